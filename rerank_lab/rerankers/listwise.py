"""Listwise LLM reranking: RankGPT / RankZephyr sliding windows and single-pass FIRST.

A window of passages goes into one prompt; the model answers a permutation
(``[2] > [1] > ...``), parsed leniently (:mod:`rerank_lab.llm.parse`). Windows slide from
the back of the candidate list to the front (Sun et al., EMNLP 2023), so strong passages
bubble up; ``passes`` repeats the sweep. FIRST (Reddy et al., 2024) replaces generation by
one forward pass per window: the passages are ordered by the logits of their labels as
the first token after the assistant's opening ``[``.

The permutation is exposed as scores (``n - rank``), so it composes with every stage.
Cost per query lands in the pipeline's per-stage counters: ``llm_calls``, ``prompt_tokens``,
``completion_tokens``, ``cached_prompt_tokens`` (prefix reused from the previous window),
``windows`` and ``parse_*`` repairs (``parse_windows_repaired`` counts windows that needed any).

Usage::

    from rerank_lab.rerankers.listwise import ListwiseReranker, FirstReranker
    run = (hybrid() % 20 >> ListwiseReranker(window=20, stride=10))(dataset)
    run = (hybrid() % 20 >> FirstReranker())(dataset)
    # online: ListwiseReranker(model="castorini/rank_zephyr_7b_v1_full", backend="openai", base_url=...)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from ..llm.backends import Completion, LLMBackend, load_backend
from ..llm.packaged import DEFAULT_GGUF
from ..llm.parse import Repairs, parse_permutation
from ..llm.prompts import PROMPTS, label, listwise_messages
from .base import BaseReranker


def default_model() -> str:
    """``$RERANK_LAB_LLM`` or the packaged Qwen2.5-Coder-1.5B-Instruct GGUF."""
    return os.environ.get("RERANK_LAB_LLM") or DEFAULT_GGUF


def default_backend() -> str:
    """``$RERANK_LAB_LLM_BACKEND`` (transformers | openai | llama-cpp), transformers by default."""
    return os.environ.get("RERANK_LAB_LLM_BACKEND") or "transformers"


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


@dataclass
class WindowResult:
    """One window's outcome: its span in the current ranking, the local order and what was repaired."""

    span: tuple[int, int]
    order: list[int]
    repairs: Repairs
    text: str = ""


class LLMReranker(BaseReranker):
    """Shared plumbing: a lazily loaded backend and cost counting from :class:`Completion`."""

    name = "llm"

    def __init__(self, model: str | None = None, backend: str | LLMBackend | None = None,
                 max_passage_words: int | None = 100, **backend_kwargs):
        super().__init__()
        self.model = model or default_model()
        self._backend = backend if isinstance(backend, LLMBackend) else None
        self.backend_name = backend if isinstance(backend, str) else default_backend()
        self.backend_kwargs = backend_kwargs
        self.max_passage_words = max_passage_words

    @property
    def backend(self) -> LLMBackend:
        if self._backend is None:  # load on first use: building a reranker stays cheap
            self._backend = load_backend(self.model, self.backend_name, **self.backend_kwargs)
        return self._backend

    def _record(self, out: Completion) -> None:
        self.count("llm_calls")
        self.count("prompt_tokens", out.prompt_tokens)
        self.count("completion_tokens", out.completion_tokens)
        self.count("cached_prompt_tokens", out.cached_tokens)


class ListwiseReranker(LLMReranker):
    """RankGPT/RankZephyr listwise reranking with a back-to-front sliding window.

    ``style``: ``"rankzephyr"`` (one user turn; Pradeep et al., 2023) or ``"rankgpt"``
    (one turn per passage; Sun et al., 2023). ``window``/``stride``/``passes`` as in rank_llm
    (defaults 20/10/1). Passages are cut to ``max_passage_words`` to bound the prompt.
    """

    name = "listwise"
    # numeric labels [1]..[n]. (Not ``alpha``: BaseReranker.alpha is the interpolation weight.)
    alpha_labels = False

    def __init__(self, model: str | None = None, backend: str | LLMBackend | None = None, style: str = "rankzephyr",
                 window: int = 20, stride: int = 10, passes: int = 1, max_passage_words: int | None = 100,
                 max_new_tokens: int | None = None, name: str | None = None, **backend_kwargs):
        super().__init__(model, backend, max_passage_words, **backend_kwargs)
        if style not in PROMPTS:
            raise ValueError(f"unknown prompt style {style!r}; use one of {', '.join(PROMPTS)}")
        sliding_windows(window, window, stride)  # validate now, not mid-run
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        self.style, self.window, self.stride, self.passes = style, window, stride, passes
        self.max_new_tokens = max_new_tokens
        self.name = name or self.name
        self.last_windows: list[WindowResult] = []  # the previous query's windows, for diagnostics

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Scores ``n - rank`` of the final permutation (input order breaks nothing: ties are impossible)."""
        n = len(documents)
        if n == 0:
            return []
        passages = [truncate_words(d, self.max_passage_words) for d in documents]
        ranking = list(range(n))  # current order, as indices into documents
        self.last_windows = []
        for _ in range(self.passes):
            for start, end in sliding_windows(n, self.window, self.stride):
                ids = ranking[start:end]
                result = self.rank_window(query, [passages[i] for i in ids])
                result.span = (start, end)
                ranking[start:end] = [ids[j] for j in result.order]
                self.last_windows.append(result)
                self.count("windows")
                for key, value in result.repairs.as_counters().items():
                    self.count(key, value)
                self.count("parse_windows_repaired", int(result.repairs.any))
        scores = [0.0] * n
        for rank, index in enumerate(ranking):
            scores[index] = float(n - rank)
        return scores

    def rank_window(self, query: str, passages: list[str]) -> WindowResult:
        """Generate a permutation of one window and parse it."""
        messages = listwise_messages(self.style, query, passages, alpha=self.alpha_labels)
        # "[12] > " is about 6 tokens for digit-splitting tokenizers; leave slack, stop at EOS
        budget = self.max_new_tokens or 6 * len(passages) + 8
        out = self.backend.generate(messages, max_new_tokens=budget)
        self._record(out)
        parsed = parse_permutation(out.text, len(passages), alpha=self.alpha_labels)
        return WindowResult((0, len(passages)), parsed.order, parsed.repairs, out.text)


class FirstReranker(ListwiseReranker):
    """Single-pass FIRST (Reddy et al., 2024, arXiv:2406.15657): rank each window by the
    next-token logits of its letter labels after the assistant's opening ``[``; one forward
    pass per window, no decoding. Windows still slide back to front.

    The letter labels ``A..Z`` keep every label one token, so ``window <= 26``.
    """

    name = "first"
    alpha_labels = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.window > 26:
            raise ValueError(f"FIRST labels passages A..Z: window must be <= 26, got {self.window}")

    def rank_window(self, query: str, passages: list[str]) -> WindowResult:
        messages = listwise_messages(self.style, query, passages, alpha=True)
        labels = [label(i, alpha=True) for i in range(len(passages))]
        bracketed = [f"[{x}" for x in labels]
        # BPE vocabularies often hold "[A" as one token (Qwen does): then "[" + "A" is a split the
        # model never saw, so score the merged tokens with no prefix. Otherwise (Mistral/Zephyr,
        # as in the paper) open the bracket and score the bare letters.
        if self.backend.single_tokens(bracketed):
            out = self.backend.next_token_logits(messages, bracketed, assistant_prefix="")
        else:
            out = self.backend.next_token_logits(messages, labels, assistant_prefix="[")
        out.completion_tokens = 1  # one position decoded
        self._record(out)
        # stable sort: equal logits keep the incoming order
        order = sorted(range(len(passages)), key=lambda i: -out.logits[i])
        return WindowResult((0, len(passages)), order, Repairs(), "")


def listwise(**kwargs) -> ListwiseReranker:
    """Registry factory: RankZephyr-style sliding window (20/10) on the offline default LLM."""
    return ListwiseReranker(**kwargs)


def rankgpt(**kwargs) -> ListwiseReranker:
    """Registry factory: RankGPT multi-turn prompt."""
    kwargs.setdefault("name", "rankgpt")
    return ListwiseReranker(style="rankgpt", **kwargs)


def first(**kwargs) -> FirstReranker:
    """Registry factory: single-pass FIRST on the offline default LLM."""
    return FirstReranker(**kwargs)
