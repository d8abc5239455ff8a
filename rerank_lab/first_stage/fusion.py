"""Reciprocal rank fusion of several first stages.

Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual
Rank Learning Methods" (SIGIR 2009): score(d) = sum_r 1 / (k + rank_r(d)), k = 60, over each
input's top ``input_depth``.

Usage::

    hybrid = RRF((BM25(), Dense()))      # or hybrid()
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.run import Run
from ..core.stage import FirstStage
from .bm25 import BM25
from .dense import Dense


@dataclass(frozen=True)
class RRF(FirstStage):
    inputs: tuple[FirstStage, ...]
    k: int = 60
    input_depth: int = 1000
    name: str = "hybrid"

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if not self.inputs:
            raise ValueError("RRF needs at least one first stage to fuse")

    def children(self):
        return self.inputs

    def prepare(self, corpus) -> None:
        for stage in self.inputs:
            stage.prepare(corpus)

    def search(self, queries, corpus, k):
        runs = [Run.from_scores(s.search(queries, corpus, max(self.input_depth, k))) for s in self.inputs]
        return fuse(runs, self.k, k)


def fuse(runs: list[Run], k: int = 60, depth: int = 1000) -> dict[str, dict[str, float]]:
    """RRF scores for the union of the runs' query ids, each cut to ``depth``."""
    fused: dict[str, dict[str, float]] = {}
    for run in runs:
        for qid, ranking in run.rankings.items():
            scores = fused.setdefault(qid, {})
            for rank, (doc_id, _) in enumerate(ranking, start=1):
                scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return {q: dict(Run.from_scores({q: s}).rankings[q][:depth]) for q, s in fused.items()}


def hybrid(dense_model: str | None = None, k: int = 60, keep_token_states: bool = False, device: str = "auto") -> RRF:
    """BM25 + dense bi-encoder fused by RRF, the offline default hybrid (``keep_token_states``:
    see :class:`~rerank_lab.first_stage.dense.Dense`; ``device``: the dense encoder's)."""
    dense = Dense(dense_model, keep_token_states=keep_token_states, device=device) if dense_model else \
        Dense(keep_token_states=keep_token_states, device=device)
    return RRF((BM25(), dense), k=k)
