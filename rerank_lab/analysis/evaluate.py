"""Evaluation equal to trec_eval: nDCG@k, Recall@k, P@k, MRR@k, MAP, per query.

Metrics are plain strings, as in ranx and ir_measures: ``"ndcg@10"``, ``"recall@100"``,
``"p@10"``, ``"mrr@10"``, ``"map"``, ``"map@100"``. Rankings follow trec_eval's order
(score descending, ties by doc id descending); a document is relevant when its judgment
is >= 1, and nDCG uses the judgment as linear gain with a log2(rank + 1) discount
(Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", TOIS 2002).
Only queries that have both judgments and a ranking are averaged, as pytrec_eval does.
tests/test_evaluate.py checks every metric against pytrec_eval to 1e-6.

Usage::

    res = evaluate(run, dataset.qrels, ["ndcg@10", "recall@100"])
    res["ndcg@10"], res.per_query["ndcg@10"]["q1"]
    paired_test(res_a, res_b, "ndcg@10")
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..core.run import Run

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map")
_METRIC = re.compile(r"^(ndcg|recall|p|mrr|map)(?:@(\d+))?$")
_ALIASES = {"precision": "p", "rr": "mrr", "ndcg_cut": "ndcg", "recip_rank": "mrr", "r": "recall"}


def parse_metric(metric: str) -> tuple[str, int | None]:
    """``"nDCG@10"`` -> ("ndcg", 10). Raises with the accepted forms on anything else."""
    text = metric.strip().lower()
    head, _, cut = text.partition("@")
    text = _ALIASES.get(head, head) + (f"@{cut}" if cut else "")
    match = _METRIC.match(text)
    if not match or (match.group(1) in {"ndcg", "recall", "p"} and not match.group(2)):
        raise ValueError(f"unknown metric {metric!r}: use ndcg@k, recall@k, p@k, mrr@k, mrr, map or map@k")
    return match.group(1), int(match.group(2)) if match.group(2) else None


def metric_value(kind: str, k: int | None, ranked_rels: Sequence[int], judged: Mapping[str, int]) -> float:
    """One metric for one query. ``ranked_rels``: judgment of each retrieved doc, in order."""
    rels = ranked_rels[:k] if k else ranked_rels
    n_relevant = sum(1 for r in judged.values() if r >= 1)
    if kind == "ndcg":
        dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rels) if r > 0)
        ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
        idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
        return dcg / idcg if idcg > 0 else 0.0
    if kind == "recall":
        return sum(1 for r in rels if r >= 1) / n_relevant if n_relevant else 0.0
    if kind == "p":
        return sum(1 for r in rels if r >= 1) / k
    if kind == "mrr":
        return next((1.0 / (i + 1) for i, r in enumerate(rels) if r >= 1), 0.0)
    if kind == "map":
        hits, total = 0, 0.0
        for i, r in enumerate(rels):
            if r >= 1:
                hits += 1
                total += hits / (i + 1)
        return total / n_relevant if n_relevant else 0.0
    raise ValueError(kind)


@dataclass
class Results:
    """Mean and per-query values of each metric for one run."""

    name: str
    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: Run | None = field(default=None, repr=False)

    def __getitem__(self, metric: str) -> float:
        return self.means[metric]

    @property
    def queries(self) -> int:
        return len(next(iter(self.per_query.values()), {}))

    def as_dict(self, digits: int = 4) -> dict:
        out: dict = {"name": self.name, "queries": self.queries}
        out.update({m: round(v, digits) for m, v in self.means.items()})
        return out


def evaluate(run: Run, qrels: Mapping[str, Mapping[str, int]], metrics: Iterable[str] = DEFAULT_METRICS,
             ignore_identical_ids: bool = False, name: str | None = None) -> Results:
    """Score ``run`` against ``qrels``; ``ignore_identical_ids`` drops a query's own doc id
    from its ranking first (BEIR's rule for ArguAna and Quora)."""
    metrics = list(metrics)
    parsed = [parse_metric(m) for m in metrics]
    evaluated = [q for q in run.rankings if q in qrels]
    missing = len(set(qrels) - set(run.rankings))
    if missing:
        warnings.warn(f"{missing} judged queries have no ranking in run {run.name!r}; they are not averaged "
                      f"(as in trec_eval without -c).", stacklevel=2)
    per_query: dict[str, dict[str, float]] = {m: {} for m in metrics}
    for qid in evaluated:
        judged = qrels[qid]
        ranking = [d for d, _ in run.rankings[qid] if not (ignore_identical_ids and d == qid)]
        rels = [judged.get(d, 0) for d in ranking]
        for metric, (kind, k) in zip(metrics, parsed):
            per_query[metric][qid] = metric_value(kind, k, rels, judged)
    means = {m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query.items()}
    return Results(name or run.name, means, per_query, run)


# -- significance -----------------------------------------------------------------
@dataclass(frozen=True)
class PairedTest:
    metric: str
    mean_a: float
    mean_b: float
    delta: float
    p_value: float
    queries: int
    method: str


def paired_test(a: Results, b: Results, metric: str = "ndcg@10", method: str = "t-test",
                n_resamples: int = 10_000, seed: int = 0) -> PairedTest:
    """Two-sided paired test of b against a over their common queries.

    ``t-test`` (Student's paired t) or ``randomization`` (Fisher's sign-flip permutation
    test; Smucker, Allan & Carterette, CIKM 2007 recommend it for IR).
    """
    common = sorted(set(a.per_query[metric]) & set(b.per_query[metric]))
    if len(common) < 2:
        raise ValueError(f"need at least 2 common queries for a paired test, got {len(common)}")
    x = np.array([a.per_query[metric][q] for q in common])
    y = np.array([b.per_query[metric][q] for q in common])
    diff = y - x
    if method == "t-test":
        from scipy import stats

        p = 1.0 if np.allclose(diff, 0) else float(stats.ttest_rel(y, x).pvalue)
    elif method == "randomization":
        rng = np.random.default_rng(seed)
        signs = rng.choice([-1.0, 1.0], size=(n_resamples, len(diff)))
        observed = abs(diff.mean())
        p = float((np.abs((signs * diff).mean(axis=1)) >= observed - 1e-12).mean())
    else:
        raise ValueError(f"unknown method {method!r}: use 't-test' or 'randomization'")
    return PairedTest(metric, float(x.mean()), float(y.mean()), float(diff.mean()), p, len(common), method)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (Holm, Scand. J. Statist. 1979)."""
    order = np.argsort(p_values)
    m = len(p_values)
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[idx]))
        adjusted[idx] = running
    return adjusted.tolist()
