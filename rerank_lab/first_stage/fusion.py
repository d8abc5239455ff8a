"""Reciprocal rank fusion of several first stages.

Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual
Rank Learning Methods" (SIGIR 2009): score(d) = sum_r 1 / (k + rank_r(d)), k = 60.

Usage::

    hybrid = RRF([BM25(), Dense()])      # or hybrid()
"""
from __future__ import annotations

import time

from ..pipeline import FirstStage
from ..run import Run, StageCost
from .bm25 import BM25
from .dense import Dense


class RRF(FirstStage):
    def __init__(self, stages: list[FirstStage], k: int = 60, depth: int = 1000, name: str = "hybrid"):
        self.inputs, self.k, self.depth, self.name = stages, k, depth, name

    def retrieve(self, queries, corpus, k):
        runs = [s.retrieve(queries, corpus, max(self.depth, k)) for s in self.inputs]
        start = time.perf_counter()
        fused = fuse(runs, self.k, k)
        seconds = time.perf_counter() - start
        costs = [c for r in runs for c in r.costs]
        per_query = {q: sum(c.per_query_seconds.get(q, 0.0) for c in costs) + seconds / max(len(queries), 1)
                     for q in queries}
        total = sum(c.seconds for c in costs) + seconds
        index_ms = sum(c.counters.get("index_ms", 0) for c in costs)
        cost = StageCost(self.name, total, sum(c.items_scored for c in costs), per_query, {"index_ms": index_ms})
        return Run.from_scores(fused, name=self.name, costs=[cost])

    def search(self, queries, corpus, k):
        return self.retrieve(queries, corpus, k).to_dict()


def fuse(runs: list[Run], k: int = 60, depth: int = 1000) -> dict[str, dict[str, float]]:
    """RRF scores for the union of the runs' query ids, each cut to ``depth``."""
    fused: dict[str, dict[str, float]] = {}
    for run in runs:
        for qid, ranking in run.rankings.items():
            scores = fused.setdefault(qid, {})
            for rank, (doc_id, _) in enumerate(ranking, start=1):
                scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return {q: dict(Run.from_scores({q: s}).rankings[q][:depth]) for q, s in fused.items()}


def hybrid(dense_model: str | None = None, k: int = 60) -> RRF:
    """BM25 + dense bi-encoder fused by RRF, the offline default hybrid."""
    return RRF([BM25(), Dense(dense_model) if dense_model else Dense()], k=k)
