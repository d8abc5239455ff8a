"""LLM plumbing for listwise and pointwise reranking: backends, prompts, permutation parsing.

- :mod:`.backends`: transformers (hub id, folder or GGUF), OpenAI-compatible endpoints, llama.cpp
- :mod:`.packaged`: the offline Qwen GGUFs assembled from pinned PyPI parts (sha256-verified)
- :mod:`.prompts`: RankGPT, RankZephyr, FIRST and yes/no pointwise prompts
- :mod:`.parse`: lenient permutation parsing with counted repairs
- :mod:`.cached`: LLM calls cached on disk (resumable, free to rerun)
- :mod:`.scorer`: what every LLM reranker family shares (backend choice, passages, cost counting)

Usage::

    from rerank_lab.llm import load_backend, parse_permutation
    llm = load_backend()                     # packaged Qwen2.5-Coder-1.5B-Instruct (offline default)
"""
from .backends import Completion, LLMBackend, LlamaCppBackend, OpenAIBackend, TransformersBackend, load_backend
from .packaged import DEFAULT_GGUF, PACKAGED_GGUF, SMALL_GGUF, packaged_gguf
from .parse import Parsed, Repairs, parse_permutation

__all__ = ["Completion", "DEFAULT_GGUF", "LLMBackend", "LlamaCppBackend", "OpenAIBackend", "PACKAGED_GGUF", "Parsed",
           "Repairs", "SMALL_GGUF", "TransformersBackend", "load_backend", "packaged_gguf", "parse_permutation"]
