"""What every LLM reranker family shares: the backend (chosen once, loaded lazily, calls
cached on disk), passages cut to a word budget, sliding windows, and cost counting from each
:class:`~rerank_lab.llm.base.Completion` (calls, prompt / cached-prompt / completion tokens,
and the cache's hits and recorded seconds, so model latency is honest when warm).

Usage::

    class MyLLMReranker(LLMScorer):      # a frozen dataclass adding its own settings
        def score(self, query, documents): ... self.backend.generate(...) ... self.record(out)
"""
from __future__ import annotations

from typing import Sequence

from ..core.stage import Scorer
from .base import Completion, LLMBackend
from .defaults import default_backend, default_model

BACKENDS = ("transformers", "llamacpp", "openai")


def truncate_words(text: str, max_words: int | None) -> str:
    """Cut a passage to ``max_words`` whitespace words (cheap and backend-independent)."""
    if not max_words:
        return text
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words])


def sliding_windows(n: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Back-to-front windows ``[start, end)`` covering ``range(n)``; consecutive ones overlap by
    ``window - stride`` so the best passages of one window travel into the next."""
    if window < 1 or stride < 1 or stride > window:
        raise ValueError(f"need 1 <= stride <= window, got window={window}, stride={stride} "
                         f"(stride > window would skip passages)")
    spans, end = [], n
    while end > 0:
        start = max(0, end - window)
        spans.append((start, end))
        if start == 0:
            break
        end -= stride
    return spans


class LLMScorer(Scorer):
    """Base of the LLM families (frozen dataclasses with ``model``, ``backend``, ``device``,
    ``max_passage_words``, ``cache`` and ``name`` fields). ``backend`` is a name (see
    :data:`BACKENDS`; None: :func:`default_backend`) or an :class:`LLMBackend` object; ``device``
    where an in-process backend runs (``"auto"``: the GPU when there is one)."""

    def __post_init__(self):
        if self.model is None:  # type: ignore[attr-defined]
            object.__setattr__(self, "model", default_model())
        if self.backend is None:  # type: ignore[attr-defined]
            object.__setattr__(self, "backend", default_backend(self.model))  # type: ignore[attr-defined]
        if isinstance(self.backend, str) and self.backend.replace("-", "").replace("_", "") not in BACKENDS:  # type: ignore[attr-defined]
            raise ValueError(f"unknown LLM backend {self.backend!r}: use one of {', '.join(BACKENDS)}")  # type: ignore[attr-defined]

    @property
    def llm(self) -> LLMBackend:
        """The backend, loaded on first use (building a reranker stays cheap), calls cached."""
        if "llm" not in self._state:
            from .backends import load_backend
            from .cached import CachedBackend

            with self.loading():
                chosen = self.backend if isinstance(self.backend, LLMBackend) else \
                    load_backend(self.model, self.backend, self.device)  # type: ignore[attr-defined]
            self._state["llm"] = CachedBackend(chosen) if self.cache else chosen  # type: ignore[attr-defined]
        return self._state["llm"]

    @property
    def runs_on(self) -> str:
        """Where the model computes: the backend's device (``"server"`` for an endpoint)."""
        if "llm" in self._state or isinstance(self.backend, LLMBackend):  # type: ignore[attr-defined]
            return self.llm.device
        if str(self.backend).replace("-", "").replace("_", "") == "openai":  # type: ignore[attr-defined]
            return "server"
        from ..components.models import pick_device

        return pick_device(self.device)  # type: ignore[attr-defined]

    def passages(self, documents: Sequence[str]) -> list[str]:
        return [truncate_words(str(d), self.max_passage_words) for d in documents]  # type: ignore[attr-defined]

    def record(self, out: Completion) -> None:
        """Count one call's cost; a call served from the cache counts as a hit with its recorded seconds."""
        self.count("llm_calls")
        self.count("prompt_tokens", out.prompt_tokens)
        self.count("completion_tokens", out.completion_tokens)
        self.count("cached_prompt_tokens", out.cached_tokens)
        if out.cached:
            self.count("cache_hits")
            self.count("saved_seconds", out.seconds)
        else:
            self.count("cache_misses")
        self.count("cache_seconds", out.lookup_seconds)
