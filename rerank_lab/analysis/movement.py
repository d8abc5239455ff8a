"""Where a reranker moved the judged-relevant documents: per query, per document.

The numbers behind :func:`rerank_lab.analysis.plots.rank_movement`: a reranker helps where it
lifts relevant documents that the first stage had already found, and hurts where it pushes
them down.

Usage::

    moves = relevant_moves(first_run, reranked_run, dataset.qrels)
    summarise(moves)                      # {"up": 41, "down": 12, "same": 80, ...}
    largest_rise(moves)                   # Move(query_id=..., rank_before=17, rank_after=1, ...)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

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
