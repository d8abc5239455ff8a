"""LLM backends behind one small interface, and ``load_backend`` to pick one by name.

- :class:`~.hf.TransformersBackend`: any causal LM by hub id or folder, or a GGUF file
- :class:`~.llamacpp.LlamaCppBackend`: llama-cpp-python on a GGUF file (the ``llm`` extra)
- :class:`~.openai_compat.OpenAIBackend`: an OpenAI-compatible server (``scripts/llm_server.sh``, vLLM, hosted)

Usage::

    llm = load_backend()                                   # offline default: packaged Qwen2.5-Coder-1.5B
    llm = load_backend("qwen2.5-0.5b-instruct-q4_k_m")     # the small packaged model (tests, smoke)
    llm = load_backend(SMALL_GGUF, "openai")               # the same model behind $OPENAI_BASE_URL
    out = llm.generate([{"role": "user", "content": "Say hi"}], max_new_tokens=8)
"""
from __future__ import annotations

import importlib.util

from .base import Completion, LLMBackend
from .defaults import LLM_SETUP, default_backend
from .hf import TransformersBackend
from .llamacpp import LlamaCppBackend
from .openai_compat import OpenAIBackend, ServerUnavailable
from .packaged import DEFAULT_GGUF, PACKAGED_GGUF, SMALL_GGUF, installed

_LOADED: dict[tuple, LLMBackend] = {}


def load_backend(model: str = DEFAULT_GGUF, backend: str | None = None, device: str = "auto", **kwargs) -> LLMBackend:
    """A backend by name, loaded once per process (notebooks build many rerankers on one model).

    ``backend``: ``"llamacpp"``, ``"transformers"``, ``"openai"`` (``base_url=``, default
    ``$OPENAI_BASE_URL``); None: the default for ``model``
    (:func:`rerank_lab.llm.defaults.default_backend`). ``device``: where an in-process backend
    runs (``"auto"``: the GPU when there is one); a server places its model itself.
    """
    if backend is None:
        backend = default_backend(model)
    backend = backend.replace("-", "").replace("_", "")
    if backend not in ("transformers", "llamacpp", "openai"):
        raise ValueError(f"unknown backend {backend!r}; use 'transformers', 'llamacpp' or 'openai'")
    if backend == "transformers":
        require_offline_llm(model, backend)
        from ..components.models import pick_device

        kwargs["device"] = pick_device(device)
    elif backend == "llamacpp":
        require_offline_llm(model, backend)
        from .llamacpp import gpu_offload

        kwargs["device"] = "cuda" if gpu_offload(device) else "cpu"  # auto: the CPU with a CPU-only build
    key = (model, backend, tuple(sorted(kwargs.items())))
    if key not in _LOADED:
        make = {"transformers": TransformersBackend, "openai": OpenAIBackend, "llamacpp": LlamaCppBackend}[backend]
        _LOADED[key] = make(model, **kwargs)
    return _LOADED[key]


def require_offline_llm(model: str, backend: str) -> None:
    """One clear error, before anything loads, when what an offline LLM needs is not installed."""
    missing = []
    if backend == "llamacpp" and importlib.util.find_spec("llama_cpp") is None:
        missing.append("llama-cpp-python")
    if backend == "transformers" and model in PACKAGED_GGUF and importlib.util.find_spec("gguf") is None:
        missing.append("gguf")
    if model in PACKAGED_GGUF and not installed(model):
        missing.append(f"the packaged {model} weights")
    if missing:
        raise ImportError(f"the LLM families run {model} here through {backend}, which needs {' and '.join(missing)}: "
                          f"{LLM_SETUP}")


__all__ = ["Completion", "DEFAULT_GGUF", "LLMBackend", "LlamaCppBackend", "OpenAIBackend", "SMALL_GGUF",
           "ServerUnavailable", "TransformersBackend", "load_backend"]
