"""Passages as a wrapper: score long documents window by window and aggregate.

Dai & Callan, "Deeper Text Understanding for IR with Contextual Neural Language Modeling"
(SIGIR 2019): ``firstp`` (the first window), ``maxp`` (the best window), ``sump`` and
``meanp``; windows slide as in PyTerrier's ``pt.text.sliding``. Any pointwise scorer gets
passages this way: a cross-encoder splits by its own tokens (so every window fits its max
length), anything else by words.

Usage::

    Passages(my_scorer, "maxp")                              # WordWindows(150, 75)
    Passages(ce_scorer, "maxp", ce_scorer.passage_splitter())  # token windows of the model
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..core.stage import Scorer

AGGREGATIONS = ("firstp", "maxp", "sump", "meanp")


def window_starts(n: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows of ``window`` units every ``stride`` over ``n`` units; the last
    window ends at ``n`` so nothing at the end is dropped."""
    starts = list(range(0, max(n - window, 0) + 1, stride))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


@dataclass(frozen=True)
class WordWindows:
    """Windows of ``length`` whitespace words every ``stride`` words (PyTerrier's defaults)."""

    length: int = 150
    stride: int = 75

    def __post_init__(self):
        if not 1 <= self.stride <= self.length:
            raise ValueError(f"need 1 <= stride <= length, got length={self.length}, stride={self.stride}")

    def __call__(self, query: str, document: str) -> list[str]:
        words = document.split()
        if not words:
            return [""]
        return [" ".join(words[s:s + self.length]) for s in window_starts(len(words), self.length, self.stride)]


@dataclass(frozen=True)
class Passages(Scorer):
    scorer: Scorer
    aggregation: str = "maxp"
    splitter: object = field(default_factory=WordWindows)

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown passage aggregation {self.aggregation!r}: use one of {', '.join(AGGREGATIONS)}")

    @property
    def name(self) -> str:
        return self.scorer.name

    def identity(self) -> dict:
        return {"passages": self.aggregation, "splitter": repr(self.splitter), "scorer": self.scorer.identity()}

    def inner(self) -> tuple[Scorer, ...]:
        return (self.scorer,)

    def _pieces(self, query: str, documents: Sequence[str]) -> tuple[list[str], list[int]]:
        pieces, owner = [], []
        for i, doc in enumerate(documents):
            windows = self.splitter(query, doc)
            for piece in windows[:1] if self.aggregation == "firstp" else windows:
                pieces.append(piece)
                owner.append(i)
        return pieces, owner

    def _aggregate(self, n: int, owner: list[int], scores: Sequence[float]) -> list[float]:
        groups: list[list[float]] = [[] for _ in range(n)]
        for i, s in zip(owner, scores):
            groups[i].append(float(s))
        reduce = {"firstp": lambda g: g[0], "maxp": max, "sump": sum, "meanp": lambda g: sum(g) / len(g)}
        return [reduce[self.aggregation](g) for g in groups]

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return self.score_batch([(query, documents)])[0]

    def score_batch(self, requests):
        split = [self._pieces(q, docs) for q, docs in requests]
        self.count("documents", sum(len(docs) for _, docs in requests))
        self.count("passages", sum(len(p) for p, _ in split))
        scores = self.scorer.score_batch([(q, pieces) for (q, _), (pieces, _) in zip(requests, split)])
        return [self._aggregate(len(docs), owner, s) for (_, docs), (_, owner), s in zip(requests, split, scores)]
