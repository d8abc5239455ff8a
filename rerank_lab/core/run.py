"""Runs: the one currency between stages.

A :class:`Run` maps each query id to a ranking (doc id, score), best first, plus the
cost every stage spent producing it. Rankings are ordered exactly as trec_eval orders
them (score descending, ties by doc id descending), so what you see is what is scored.

Usage::

    run = Run.from_scores({"q1": {"d1": 2.0, "d2": 1.0}}, name="bm25")
    run.write_trec("bm25.trec"); Run.read_trec("bm25.trec")
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping

from .cost import StageCost, query_seconds
from .files import atomic_write_text

ScoredDoc = tuple[str, float]


def trec_order(scores: Mapping[str, float]) -> list[ScoredDoc]:
    """Sort (doc id, score) as trec_eval does: score descending, then doc id descending."""
    return sorted(((d, float(s)) for d, s in scores.items()), key=lambda x: (-x[1], _neg(x[0])))


class _neg(str):
    """A string whose ordering is reversed, for descending-doc-id tie breaks."""

    def __lt__(self, other):  # type: ignore[override]
        return str.__gt__(self, other)


@dataclass
class Run:
    """Ranked candidates per query plus the cost of every stage that made them."""

    rankings: dict[str, list[ScoredDoc]]
    name: str = "run"
    costs: list[StageCost] = field(default_factory=list)

    @classmethod
    def from_scores(cls, scores: Mapping[str, Mapping[str, float]], name: str = "run",
                    costs: Iterable[StageCost] = ()) -> "Run":
        return cls({q: trec_order(s) for q, s in scores.items()}, name, list(costs))

    def __len__(self) -> int:
        return len(self.rankings)

    def __getitem__(self, query_id: str) -> list[ScoredDoc]:
        return self.rankings[query_id]

    def doc_ids(self, query_id: str, k: int | None = None) -> list[str]:
        return [d for d, _ in self.rankings.get(query_id, [])[:k]]

    def top(self, k: int) -> "Run":
        """The first ``k`` documents of every ranking."""
        return replace(self, rankings={q: r[:k] for q, r in self.rankings.items()})

    def subset(self, query_ids: Iterable[str]) -> "Run":
        keep = set(query_ids)
        return replace(self, rankings={q: r for q, r in self.rankings.items() if q in keep})

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{qid: {doc_id: score}}``, the shape pytrec_eval and BEIR expect."""
        return {q: dict(r) for q, r in self.rankings.items()}

    def total_seconds(self, clock: str = "wall") -> float:
        """Seconds over all stages: ``"wall"`` as spent, ``"model"`` as with empty caches."""
        return sum(c.seconds if clock == "wall" else float(c.model_seconds or 0.0) for c in self.costs)

    def query_seconds(self, clock: str = "model") -> dict[str, float]:
        """Per-query latency summed over all stages (``clock``: ``"model"`` or ``"wall"``)."""
        return query_seconds(self.costs, clock)

    def rename(self, name: str) -> "Run":
        return replace(self, name=name)

    # -- TREC run files -------------------------------------------------------------
    def write_trec(self, path: str | os.PathLike, tag: str | None = None) -> Path:
        """Write ``qid Q0 docid rank score tag`` lines (atomically)."""
        tag = (tag or self.name).replace(" ", "_") or "rerank_lab"
        lines = [
            f"{q} Q0 {d} {rank} {score:.8g} {tag}"
            for q, ranking in self.rankings.items()
            for rank, (d, score) in enumerate(ranking, start=1)
        ]
        return atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))

    @classmethod
    def read_trec(cls, path: str | os.PathLike, name: str | None = None) -> "Run":
        """Read a TREC run file; errors name the file and line."""
        path = Path(path)
        scores: dict[str, dict[str, float]] = {}
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 6:
                    raise ValueError(f"{path}:{line_no}: a TREC run line has 6 columns "
                                     f"'qid Q0 docid rank score tag', found {len(parts)}: {line.strip()!r}")
                qid, _, doc_id, _, score, _ = parts
                try:
                    value = float(score)
                except ValueError:
                    raise ValueError(f"{path}:{line_no}: score {score!r} is not a number") from None
                if doc_id in scores.setdefault(qid, {}):
                    raise ValueError(f"{path}:{line_no}: document {doc_id!r} appears twice for query {qid!r}")
                scores[qid][doc_id] = value
        return cls.from_scores(scores, name=name or path.stem)
