"""LLM backends behind one small interface, and ``load_backend`` to pick one by name.

- :class:`~.hf.TransformersBackend`: any causal LM by hub id or folder, or a GGUF file
- :class:`~.llamacpp.LlamaCppBackend`: llama-cpp-python on a GGUF file (the ``llm`` extra)
- :class:`~.openai_compat.OpenAIBackend`: an OpenAI-compatible ``/v1/chat/completions`` endpoint

Usage::

    llm = load_backend()                                   # offline default: packaged Qwen2.5-Coder-1.5B
    llm = load_backend("qwen2.5-0.5b-instruct-q4_k_m")     # the small packaged model (tests, smoke)
    out = llm.generate([{"role": "user", "content": "Say hi"}], max_new_tokens=8)
"""
from __future__ import annotations

from .base import Completion, LLMBackend
from .hf import TransformersBackend
from .llamacpp import LlamaCppBackend
from .openai_compat import OpenAIBackend
from .defaults import default_backend
from .packaged import DEFAULT_GGUF, SMALL_GGUF


_LOADED: dict[tuple, LLMBackend] = {}


def load_backend(model: str = DEFAULT_GGUF, backend: str | None = None, **kwargs) -> LLMBackend:
    """A backend by name, loaded once per process (notebooks build many rerankers on one model).

    ``backend``: ``"llamacpp"``, ``"transformers"``, ``"openai"`` (``base_url=``); None: the
    default for ``model`` (:func:`rerank_lab.llm.defaults.default_backend`).
    """
    if backend is None:
        backend = default_backend(model)
    backend = backend.replace("-", "").replace("_", "")
    key = (model, backend, tuple(sorted(kwargs.items())))
    if key not in _LOADED:
        if backend == "transformers":
            _LOADED[key] = TransformersBackend(model, **kwargs)
        elif backend == "openai":
            _LOADED[key] = OpenAIBackend(model, **kwargs)
        elif backend == "llamacpp":
            _LOADED[key] = LlamaCppBackend(model, **kwargs)
        else:
            raise ValueError(f"unknown backend {backend!r}; use 'transformers', 'llamacpp' or 'openai'")
    return _LOADED[key]


__all__ = ["Completion", "DEFAULT_GGUF", "LLMBackend", "LlamaCppBackend", "OpenAIBackend", "SMALL_GGUF",
           "TransformersBackend", "load_backend"]
