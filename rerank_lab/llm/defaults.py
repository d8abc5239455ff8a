"""Which LLM and which runtime the LLM families use when nothing says otherwise.

Usage::

    default_model()              # $RERANK_LAB_LLM or the packaged Qwen2.5-Coder-1.5B GGUF
    default_backend(model)       # $RERANK_LAB_LLM_BACKEND, else llamacpp for packaged GGUFs
"""
from __future__ import annotations

import os

from .packaged import DEFAULT_GGUF

#: what to do when the offline LLM runtime is not installed (the main job's set-up leaves it out)
LLM_SETUP = ("run `bash scripts/setup.sh llm` (builds llama-cpp-python from source once, about 10 minutes on 2 "
             "cores, and installs the packaged GGUFs), or serve the model and set RERANK_LAB_LLM_BACKEND=openai "
             "OPENAI_BASE_URL=http://HOST:PORT/v1 (`bash scripts/llm_server.sh`, or vLLM: docs/families.md)")


def default_model() -> str:
    """``$RERANK_LAB_LLM`` or the packaged Qwen2.5-Coder-1.5B-Instruct GGUF."""
    return os.environ.get("RERANK_LAB_LLM") or DEFAULT_GGUF


def default_backend(model: str | None = None) -> str:
    """``$RERANK_LAB_LLM_BACKEND`` (llamacpp | transformers | openai); otherwise llama.cpp for the
    packaged GGUF models (``benchmarks/llm_backends.py``: about 2.5x transformers on the same Q4
    weights on a 2-core CPU, same answers), or transformers for them where llama-cpp-python is
    missing but transformers' GGUF reader is there; transformers for every other model."""
    chosen = os.environ.get("RERANK_LAB_LLM_BACKEND")
    if chosen:
        return chosen
    import importlib.util

    from .packaged import PACKAGED_GGUF

    packaged = (model or default_model()) in PACKAGED_GGUF or str(model or "").endswith(".gguf")
    if not packaged:
        return "transformers"
    if importlib.util.find_spec("llama_cpp") is None and importlib.util.find_spec("gguf") is not None:
        return "transformers"
    return "llamacpp"  # when missing, its error says what to install
