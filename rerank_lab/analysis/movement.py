"""Where a reranker moved the judged-relevant documents: per query, per document.

The numbers behind :func:`rerank_lab.analysis.plots.rank_movement`: a reranker helps where it
lifts relevant documents that the first stage had already found, and hurts where it pushes
them down.

Usage::

    moves = relevant_moves(first_run, reranked_run, dataset.qrels)
    summarise(moves)                      # {"up": 41, "down": 12, "same": 80, ...}
    largest_rise(moves)                   # Move(query_id=..., rank_before=17, rank_after=1, ...)
    typical_queries(first_run, reranked_run, dataset.qrels, clean_ids)   # the median help and the median hurt
    shuffled(candidates, seed=1)          # the same candidates in a random order (position-bias tests)
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Mapping

from ..core.run import Run


@dataclass(frozen=True)
class Move:
    query_id: str
    doc_id: str
    grade: int
    rank_before: int | None   # 1-based; None: not in that ranking
    rank_after: int | None

    @property
    def rise(self) -> int:
        """Ranks gained (negative: lost); 0 when either side is missing."""
        if self.rank_before is None or self.rank_after is None:
            return 0
        return self.rank_before - self.rank_after


def relevant_moves(before: Run, after: Run, qrels: Mapping[str, Mapping[str, int]]) -> list[Move]:
    """One :class:`Move` per judged-relevant document that either ranking holds."""
    moves = []
    for qid, ranking in after.rankings.items():
        old = {d: i + 1 for i, d in enumerate(before.doc_ids(qid))}
        new = {d: i + 1 for i, (d, _) in enumerate(ranking)}
        for doc, grade in qrels.get(qid, {}).items():
            if grade > 0 and (doc in old or doc in new):
                moves.append(Move(qid, doc, grade, old.get(doc), new.get(doc)))
    return moves


def summarise(moves: list[Move]) -> dict:
    """How many relevant documents went up, down or stayed, and the mean ranks gained."""
    rises = [m.rise for m in moves]
    return {"relevant_documents": len(moves), "up": sum(r > 0 for r in rises), "down": sum(r < 0 for r in rises),
            "same": sum(r == 0 for r in rises), "mean_rise": round(sum(rises) / len(rises), 2) if rises else 0.0,
            "to_the_top": sum(m.rank_after == 1 and (m.rank_before or 0) > 1 for m in moves)}


def largest_rise(moves: list[Move], to_rank: int = 1) -> Move | None:
    """The relevant document lifted furthest, among those that ended at rank ``to_rank`` or
    better (a teaching example: say that it was chosen as the largest rise)."""
    landed = [m for m in moves if m.rank_after is not None and m.rank_after <= to_rank and m.rise > 0]
    return max(landed, key=lambda m: (m.rise, m.grade, m.query_id), default=None)


def position_matrix(candidates: Run, reranked: Run, depth: int | None = None):
    """How often each input position (columns; 0 = the first stage's top) ends at each output
    rank (rows), summed over queries: the picture of position bias. A ranker that reads the
    passages spreads every column; one that echoes its input is the diagonal; one that leans on
    a position (or a label token) puts the same column at the top for every query.

    Usage: ``position_matrix(hybrid_top20, first_run)`` → ``numpy`` array ``[rank, position]``."""
    import numpy as np

    depth = depth or max((len(candidates.doc_ids(q)) for q in reranked.rankings if q in candidates.rankings), default=0)
    counts = np.zeros((depth, depth), dtype=int)
    for qid in reranked.rankings:
        if qid not in candidates.rankings:
            continue
        position = {d: i for i, d in enumerate(candidates.doc_ids(qid)[:depth])}
        for rank, doc in enumerate(reranked.doc_ids(qid)[:depth]):
            if doc in position:
                counts[rank, position[doc]] += 1
    return counts


@dataclass(frozen=True)
class QueryChange:
    """One query's metric before and after reranking."""

    query_id: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class TypicalQueries:
    """The examples a teaching picture should show, chosen by a stated rule (:func:`typical_queries`):
    the median query among those reranking helped and the median among those it hurt."""

    helped: QueryChange | None
    hurt: QueryChange | None
    n_helped: int
    n_hurt: int
    n_unchanged: int
    metric: str
    rule: str

    def counts(self) -> str:
        return (f"{self.metric} went up on {self.n_helped} queries, down on {self.n_hurt} and did not move on "
                f"{self.n_unchanged}")


def _median_of(changes: list[QueryChange]) -> QueryChange | None:
    """The lower median by the size of the change (ties broken by query id): one real query, and of
    an even count the smaller of the two middle changes (no example overstates what reranking does)."""
    if not changes:
        return None
    ordered = sorted(changes, key=lambda c: (abs(c.delta), c.query_id))
    return ordered[(len(ordered) - 1) // 2]


def typical_queries(before: Run, after: Run, qrels: Mapping[str, Mapping[str, int]],
                    query_ids: Iterable[str] | None = None, metric: str = "ndcg@10") -> TypicalQueries:
    """Per query, ``metric`` before and after reranking over ``query_ids`` (default: every judged query
    ``after`` ranks); among the queries it rose on, the one with the median rise, and among those it
    fell on, the one with the median fall. A largest rise teaches that reranking works miracles; the
    medians show what it usually does where it helps and where it fails. Pass the clean queries of a
    trained reranker (:func:`~rerank_lab.analysis.contamination.contamination`) so that no example is
    a document it saw in training."""
    from .evaluate import evaluate

    ids = [q for q in (query_ids if query_ids is not None else after.rankings) if q in qrels and q in after.rankings]
    a = evaluate(before.subset(ids), {q: qrels[q] for q in ids}, [metric]).per_query[metric]
    b = evaluate(after.subset(ids), {q: qrels[q] for q in ids}, [metric]).per_query[metric]
    changes = [QueryChange(q, a.get(q, 0.0), b.get(q, 0.0)) for q in sorted(ids)]
    up = [c for c in changes if c.delta > 1e-12]
    down = [c for c in changes if c.delta < -1e-12]
    return TypicalQueries(_median_of(up), _median_of(down), len(up), len(down), len(changes) - len(up) - len(down),
                          metric, f"the median {metric} rise among the {len(up)} queries reranking helped, and the "
                                  f"median fall among the {len(down)} it hurt ({len(changes)} queries considered)")


def shuffled(run: Run, seed: int) -> Run:
    """``run``'s candidates in a random order per query (``random.Random(seed)``), scored by their new
    position: the input of a position-bias test (an order-free reranker scores the same on any order)."""
    rng = random.Random(seed)
    scores = {}
    for qid in run.rankings:
        ids = run.doc_ids(qid)
        rng.shuffle(ids)
        scores[qid] = {d: float(len(ids) - i) for i, d in enumerate(ids)}
    return Run.from_scores(scores, name=f"shuffled-{seed}")
