"""Listwise LLM reranking: RankGPT / RankZephyr sliding windows.

A window of passages goes into one prompt; the model answers a permutation
(``[2] > [1] > ...``), parsed leniently (:mod:`rerank_lab.llm.parse`). Windows slide from
the back of the candidate list to the front (Sun et al., EMNLP 2023), so strong passages
bubble up; ``passes`` repeats the sweep. FIRST (:mod:`.first`) reuses the sweep with one
forward pass per window instead of generation.

The permutation is exposed as scores (``n - rank``), so it composes with every stage.
Cost per query lands in the pipeline's per-stage counters: ``llm_calls``, ``prompt_tokens``,
``completion_tokens``, ``cached_prompt_tokens`` (prefix reused from the previous window),
``windows`` and ``parse_*`` repairs (``parse_windows_repaired`` counts windows that needed any).

Usage::

    run = (hybrid() % 20 >> Listwise(window=20, stride=10))(dataset)
    # online: Listwise(model="castorini/rank_zephyr_7b_v1_full", backend="openai", base_url=...)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..llm.base import LLMBackend
from ..llm.parse import Repairs, parse_permutation
from ..llm.prompts import PROMPTS, listwise_messages
from ..llm.scorer import LLMScorer, sliding_windows


@dataclass
class WindowResult:
    """One window's outcome: its span in the current ranking, the local order and what was repaired."""

    span: tuple[int, int]
    order: list[int]
    repairs: Repairs
    text: str = ""


@dataclass(frozen=True)
class Listwise(LLMScorer):
    """RankGPT/RankZephyr listwise reranking with a back-to-front sliding window.

    ``style``: ``"rankzephyr"`` (one user turn; Pradeep et al., 2023) or ``"rankgpt"`` (one turn
    per passage; Sun et al., 2023). ``window``/``stride``/``passes`` as in rank_llm (defaults
    20/10/1). Passages are cut to ``max_passage_words`` to bound the prompt.
    """

    model: str | None = None
    backend: str | LLMBackend | None = None
    style: str = "rankzephyr"
    window: int = 20
    stride: int = 10
    passes: int = 1
    max_passage_words: int | None = 100
    max_new_tokens: int | None = None
    cache: bool = True
    device: str = "auto"          # an in-process backend's device ("auto": the GPU when there is one)
    name: str = "listwise"

    def __post_init__(self):
        super().__post_init__()
        if self.style not in PROMPTS:
            raise ValueError(f"unknown prompt style {self.style!r}; use one of {', '.join(PROMPTS)}")
        sliding_windows(self.window, self.window, self.stride)  # validate now, not mid-run
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1, got {self.passes}")

    @property
    def last_windows(self) -> list[WindowResult]:
        """The previous query's windows, for diagnostics."""
        return self._state.get("last_windows", [])

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Scores ``n - rank`` of the final permutation (ties are impossible)."""
        n = len(documents)
        if n == 0:
            return []
        passages = self.passages(documents)
        ranking = list(range(n))  # current order, as indices into documents
        windows: list[WindowResult] = []
        for _ in range(self.passes):
            for start, end in sliding_windows(n, self.window, self.stride):
                ids = ranking[start:end]
                result = self.rank_window(query, [passages[i] for i in ids])
                result.span = (start, end)
                ranking[start:end] = [ids[j] for j in result.order]
                windows.append(result)
                self.count("windows")
                for key, value in result.repairs.as_counters().items():
                    self.count(key, value)
                self.count("parse_windows_repaired", int(result.repairs.any))
        self._state["last_windows"] = windows
        scores = [0.0] * n
        for rank, index in enumerate(ranking):
            scores[index] = float(n - rank)
        return scores

    def rank_window(self, query: str, passages: list[str]) -> WindowResult:
        """Generate a permutation of one window and parse it."""
        messages = listwise_messages(self.style, query, passages)
        # "[12] > " is about 6 tokens for digit-splitting tokenizers; leave slack, stop at EOS
        budget = self.max_new_tokens or 6 * len(passages) + 8
        out = self.llm.generate(messages, max_new_tokens=budget)
        self.record(out)
        parsed = parse_permutation(out.text, len(passages))
        return WindowResult((0, len(passages)), parsed.order, parsed.repairs, out.text)


def listwise(**kwargs) -> Listwise:
    """Registry factory ``"listwise"``: RankZephyr-style sliding window (20/10) on the offline default LLM."""
    return Listwise(**kwargs)


def rankgpt(**kwargs) -> Listwise:
    """Registry factory ``"rankgpt"``: the RankGPT multi-turn prompt."""
    kwargs.setdefault("name", "rankgpt")
    return Listwise(style="rankgpt", **kwargs)
