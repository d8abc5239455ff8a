"""Close-call refinement as a wrapper: an approximate scorer's near ties at the top are
settled by an exact one.

bf16 or int8 rounding moves a cross-encoder score by about 0.01, and two documents can sit
0.001 apart: where two of a query's top ``top`` candidates score within ``margin`` of each
other, both are re-scored by ``exact``. A few rounds, since an exact score can land next to a
neighbour it was not close to before.

Usage::

    Refine(approximate=fast_scorer, exact=fp32_scorer, margin=0.005, top=10)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.stage import Scorer


@dataclass(frozen=True)
class Refine(Scorer):
    approximate: Scorer
    exact: Scorer
    margin: float = 0.005
    top: int = 10
    rounds: int = 3

    def __post_init__(self):
        if self.margin < 0:
            raise ValueError(f"refine margin must be >= 0 (0 turns refinement off), got {self.margin}")
        if self.top < 1:
            raise ValueError(f"refine top must be >= 1, got {self.top}")

    @property
    def name(self) -> str:
        return self.approximate.name

    def inner(self) -> tuple[Scorer, ...]:
        return (self.approximate, self.exact)

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return self._settle(query, documents, self.approximate.score(query, documents))

    def score_batch(self, requests):
        first = self.approximate.score_batch(requests)
        return [self._settle(q, docs, scores) for (q, docs), scores in zip(requests, first)]

    def _settle(self, query: str, documents: Sequence[str], scores: Sequence[float]) -> list[float]:
        scores, refined = list(scores), set()
        for _ in range(self.rounds):
            todo = [i for i in close_calls(scores, self.margin, self.top) if i not in refined]
            if not todo:
                break
            for i, s in zip(todo, self.exact.score(query, [documents[i] for i in todo])):
                scores[i] = s
            refined.update(todo)
        self.count("refined_pairs", len(refined))
        return scores


def close_calls(scores: Sequence[float], margin: float, top: int) -> list[int]:
    """Indices of the candidates that sit within ``margin`` of a neighbour in score order,
    among the first ``top`` (and any tied within ``margin`` of the ``top``-th).

    >>> close_calls([3.450, 3.449, 1.1, 0.9], margin=0.01, top=10)
    [0, 1]
    """
    if len(scores) < 2 or margin <= 0:
        return []
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ranked = np.asarray(scores, dtype=np.float64)[order]
    floor = ranked[min(top, len(ranked)) - 1] - margin
    close = set()
    for i in range(len(ranked) - 1):
        if ranked[i] < floor:
            break
        if ranked[i] - ranked[i + 1] < margin:
            close.update((int(order[i]), int(order[i + 1])))
    return sorted(close)
