"""Pairwise ranking prompting (Qin et al., 2023, "Large Language Models are Effective Text Rankers
with Pairwise Ranking Prompting", arXiv:2306.17563): "which passage is more relevant, A or B?".

Each comparison asks both orders and averages the two probabilities that the first document
wins (read from the logits of the answer tokens ``A`` / ``B``), which cancels the model's
preference for a position. The query comes first in the prompt, so all comparisons of one query
share a prefix that llama.cpp and transformers reuse. Three ways to turn comparisons into a
ranking, as in the paper:

* ``allpairs``: every pair; a document's score is its summed win probability (n(n-1)/2 comparisons);
* ``sliding``: ``passes`` back-to-front bubble-sort passes over adjacent pairs (PRP-Sliding-K: the
  top ``passes`` are sorted; about passes·n comparisons);
* ``sorting``: a comparison sort on the judge (O(n log n) comparisons).

``max_comparisons`` caps the comparisons per query (two LLM calls each); every comparison is kept
as a :class:`Judgment` (``last_judgments``), the raw material of zELO training.

Usage::

    run = (hybrid() % 10 >> Pairwise(method="sliding", passes=3))(dataset)
    p = Pairwise().judge("what causes scurvy?", doc_a, doc_b)      # P(doc_a more relevant)
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

from ..llm.base import LLMBackend
from ..llm.scorer import LLMScorer, truncate_words

METHODS = ("allpairs", "sliding", "sorting")


@dataclass(frozen=True)
class Judgment:
    """One pairwise comparison: the probability that ``doc_a`` is more relevant than ``doc_b``."""

    query: str
    doc_a: str
    doc_b: str
    p_a_beats_b: float


def pairwise_messages(query: str, passage_a: str, passage_b: str) -> list[dict[str, str]]:
    user = (f'Given a query "{query}", which of the following two passages is more relevant to the query?\n\n'
            f'Passage A: "{passage_a}"\n\nPassage B: "{passage_b}"\n\nOutput Passage A or Passage B:')
    return [{"role": "system", "content": "You are a search relevance judge."}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class Pairwise(LLMScorer):
    model: str | None = None
    backend: str | LLMBackend | None = None
    method: str = "sliding"
    passes: int = 3
    max_comparisons: int | None = None
    max_passage_words: int | None = 100
    cache: bool = True
    device: str = "auto"          # an in-process backend's device ("auto": the GPU when there is one)
    name: str = "pairwise"

    def __post_init__(self):
        super().__post_init__()
        if self.method not in METHODS:
            raise ValueError(f"unknown pairwise method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1, got {self.passes}")
        if self.max_comparisons is not None and self.max_comparisons < 1:
            raise ValueError(f"max_comparisons must be >= 1 (or None for no cap), got {self.max_comparisons}")

    @property
    def last_judgments(self) -> list[Judgment]:
        """Every comparison made for the previous query."""
        return self._state.get("judgments", [])

    def _one_order(self, query: str, first: str, second: str) -> float:
        """P(first beats second) with ``first`` shown as Passage A."""
        out = self.llm.next_token_logits(pairwise_messages(query, first, second), [" A", " B"],
                                         assistant_prefix="Passage")
        out.completion_tokens = 1
        self.record(out)
        a, b = out.logits
        return 1.0 / (1.0 + math.exp(b - a))

    def judge(self, query: str, doc_a: str, doc_b: str) -> float:
        """P(``doc_a`` more relevant than ``doc_b``), both orders averaged (two LLM calls)."""
        a = truncate_words(doc_a, self.max_passage_words)
        b = truncate_words(doc_b, self.max_passage_words)
        p = 0.5 * (self._one_order(query, a, b) + 1.0 - self._one_order(query, b, a))
        self.count("comparisons")
        self._state.setdefault("judgments", []).append(Judgment(query, doc_a, doc_b, p))
        return p

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        n = len(documents)
        self._state["judgments"] = []
        if n < 2:
            return [0.0] * n
        budget = [self.max_comparisons if self.max_comparisons is not None else math.inf]
        memo: dict[tuple[int, int], float] = {}

        def beats(i: int, j: int) -> float | None:
            """P(doc i beats doc j), or None once the budget is spent."""
            if (i, j) in memo:
                return memo[(i, j)]
            if (j, i) in memo:
                return 1.0 - memo[(j, i)]
            if budget[0] <= 0:
                return None
            budget[0] -= 1
            memo[(i, j)] = self.judge(query, documents[i], documents[j])
            return memo[(i, j)]

        if self.method == "allpairs":
            wins = [0.0] * n
            for i in range(n):
                for j in range(i + 1, n):
                    p = beats(i, j)
                    if p is None:
                        break
                    wins[i] += p
                    wins[j] += 1.0 - p
            # summed win probability first; the input order breaks ties (and orders the unjudged)
            order = sorted(range(n), key=lambda i: (-wins[i], i))
        elif self.method == "sliding":
            order = list(range(n))
            for _ in range(self.passes):
                for pos in range(n - 2, -1, -1):  # back to front: a strong document bubbles up
                    p = beats(order[pos + 1], order[pos])
                    if p is None:
                        break
                    if p > 0.5:
                        order[pos], order[pos + 1] = order[pos + 1], order[pos]
        else:
            def compare(i: int, j: int) -> int:
                p = beats(i, j)
                return 0 if p is None or p == 0.5 else (-1 if p > 0.5 else 1)

            order = sorted(range(n), key=functools.cmp_to_key(compare))
        scores = [0.0] * n
        for rank, index in enumerate(order):
            scores[index] = float(n - rank)
        return scores


def pairwise(**kwargs) -> Pairwise:
    """Registry factory ``"pairwise"``: PRP-Sliding (3 passes) on the offline default LLM."""
    return Pairwise(**kwargs)
