"""Which LLM and which runtime the LLM families use when nothing says otherwise.

Usage::

    default_model()              # $RERANK_LAB_LLM or the packaged Qwen2.5-Coder-1.5B GGUF
    default_backend(model)       # $RERANK_LAB_LLM_BACKEND, else llamacpp for packaged GGUFs when installed
"""
from __future__ import annotations

import os

from .packaged import DEFAULT_GGUF


def default_model() -> str:
    """``$RERANK_LAB_LLM`` or the packaged Qwen2.5-Coder-1.5B-Instruct GGUF."""
    return os.environ.get("RERANK_LAB_LLM") or DEFAULT_GGUF


def default_backend(model: str | None = None) -> str:
    """``$RERANK_LAB_LLM_BACKEND`` (llamacpp | transformers | openai); otherwise llama.cpp for the
    packaged GGUF models when llama-cpp-python is installed (``benchmarks/llm_backends.py``: about
    2.5x transformers on the same Q4 weights on a 2-core CPU, same answers), else transformers."""
    chosen = os.environ.get("RERANK_LAB_LLM_BACKEND")
    if chosen:
        return chosen
    import importlib.util

    from .packaged import PACKAGED_GGUF

    packaged = (model or default_model()) in PACKAGED_GGUF or str(model or "").endswith(".gguf")
    return "llamacpp" if packaged and importlib.util.find_spec("llama_cpp") is not None else "transformers"
