"""Evaluation equal to trec_eval: nDCG@k, Recall@k, P@k, MRR@k, MAP, Judged@k, per query.

Metrics are plain strings, as in ranx and ir_measures: ``"ndcg@10"``, ``"recall@100"``, ``"p@10"``,
``"mrr@10"``, ``"map"``, ``"map@100"``, ``"judged@10"``. Rankings follow trec_eval's order (score
descending, ties by doc id descending); a document is relevant when its judgment is >= 1, and nDCG
uses the judgment as linear gain with a log2(rank + 1) discount (Järvelin & Kekäläinen, TOIS 2002).
Judged@k is the share of the top k that carries any judgment, relevant or not (LLM rerankers surface
unjudged documents: read nDCG beside it).

**Which queries are averaged.** Every judged query. A judged query whose ranking is empty or absent
counts as 0 (``empty_rankings="zero"``, the default, as ``trec_eval -c``): the fair choice when
comparing pipelines, since a pipeline that returns nothing for a query should not be averaged over
fewer queries than one that does. ``empty_rankings="skip"`` averages only over ranked queries, as
pytrec_eval and the BEIR tables do. Results always say how many were empty (``empty_rankings``).
``condensed=True`` drops unjudged documents before scoring (condensed lists; Sakai, SIGIR 2007), to
compare rerankers that surface unjudged documents. tests check every metric against pytrec_eval to 1e-6.

Usage::

    res = evaluate(run, dataset.qrels, ["ndcg@10", "judged@10"])
    res["ndcg@10"], res.per_query["ndcg@10"]["q1"], res.empty_rankings
    paired_test(res_a, res_b, "ndcg@10", method="randomization")
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..core.run import Run

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map", "judged@10")
EMPTY_RANKINGS = ("zero", "skip")
_METRIC = re.compile(r"^(ndcg|recall|p|mrr|map|judged)(?:@(\d+))?$")
_ALIASES = {"precision": "p", "rr": "mrr", "ndcg_cut": "ndcg", "recip_rank": "mrr", "r": "recall"}


def parse_metric(metric: str) -> tuple[str, int | None]:
    """``"nDCG@10"`` -> ("ndcg", 10). Raises with the accepted forms on anything else."""
    text = metric.strip().lower()
    head, _, cut = text.partition("@")
    text = _ALIASES.get(head, head) + (f"@{cut}" if cut else "")
    match = _METRIC.match(text)
    if not match or (match.group(1) in {"ndcg", "recall", "p", "judged"} and not match.group(2)):
        raise ValueError(f"unknown metric {metric!r}: use ndcg@k, recall@k, p@k, mrr@k, mrr, map, map@k or judged@k")
    if match.group(2) is not None and int(match.group(2)) < 1:
        raise ValueError(f"metric {metric!r} has cut-off {match.group(2)}: the cut-off k in {match.group(1)}@k is the "
                         f"number of top documents scored and must be at least 1 (e.g. {match.group(1)}@10)")
    return match.group(1), int(match.group(2)) if match.group(2) else None


def metric_value(kind: str, k: int | None, ranked_rels: Sequence[int | None], judged: Mapping[str, int]) -> float:
    """One metric for one query. ``ranked_rels``: the judgment of each retrieved doc in order
    (None where unjudged)."""
    rels = ranked_rels[:k] if k else ranked_rels
    n_relevant = sum(1 for r in judged.values() if r >= 1)
    if kind == "judged":
        return sum(1 for r in rels if r is not None) / k
    rels = [r or 0 for r in rels]
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
    """Mean and per-query values of each metric for one run, and the query-set convention used."""

    name: str
    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: Run | None = field(default=None, repr=False)
    empty_rankings: int = 0          # judged queries the run ranked nothing for
    convention: str = "zero"         # how they were averaged: "zero" (counted as 0) or "skip"

    def __getitem__(self, metric: str) -> float:
        return self.means[metric]

    @property
    def queries(self) -> int:
        return len(next(iter(self.per_query.values()), {}))

    def restrict(self, query_ids) -> "Results":
        """The same results over ``query_ids`` only (means recomputed; a part with no query has mean 0)."""
        keep = set(query_ids)
        per_query = {m: {q: v for q, v in values.items() if q in keep} for m, values in self.per_query.items()}
        means = {m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query.items()}
        return Results(self.name, means, per_query, self.run, self.empty_rankings, self.convention)

    def as_dict(self, digits: int = 4) -> dict:
        out: dict = {"name": self.name, "queries": self.queries, "empty_rankings": self.empty_rankings,
                     "empty_rankings_counted_as": "0" if self.convention == "zero" else "skipped"}
        out.update({m: round(v, digits) for m, v in self.means.items()})
        return out


def evaluate(run: Run, qrels: Mapping[str, Mapping[str, int]], metrics: Iterable[str] = DEFAULT_METRICS,
             ignore_identical_ids: bool = False, name: str | None = None, empty_rankings: str = "zero",
             condensed: bool = False) -> Results:
    """Score ``run`` against ``qrels`` over the judged queries (see the module docstring for
    ``empty_rankings`` and ``condensed``); ``ignore_identical_ids`` drops a query's own doc id
    from its ranking first (BEIR's rule for ArguAna and Quora)."""
    if empty_rankings not in EMPTY_RANKINGS:
        raise ValueError(f"empty_rankings must be 'zero' (count as 0, trec_eval -c) or 'skip' (average ranked "
                         f"queries only, as pytrec_eval), got {empty_rankings!r}")
    metrics = list(metrics)
    parsed = [parse_metric(m) for m in metrics]
    per_query: dict[str, dict[str, float]] = {m: {} for m in metrics}
    empty = 0
    for qid, judged in qrels.items():
        ranking = [d for d, _ in run.rankings.get(qid, []) if not (ignore_identical_ids and d == qid)]
        if condensed:
            ranking = [d for d in ranking if d in judged]
        if not ranking:
            empty += 1
            if empty_rankings == "skip":
                continue
        rels = [judged.get(d) for d in ranking]
        for metric, (kind, k) in zip(metrics, parsed):
            per_query[metric][qid] = metric_value(kind, k, rels, judged)
    means = {m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query.items()}
    return Results(name or run.name, means, per_query, run, empty, empty_rankings)


# -- significance -----------------------------------------------------------------
@dataclass(frozen=True)
class PairedTest:
    """b against a over their common queries: the mean difference, its 95% interval (Student's t
    over the per-query differences) and the two-sided p-value of ``method``."""

    metric: str
    mean_a: float
    mean_b: float
    delta: float
    p_value: float
    queries: int
    method: str
    ci_low: float = float("nan")
    ci_high: float = float("nan")


def randomization_p(diff: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> tuple[float, str]:
    """Two-sided sign-flip permutation p-value of mean(``diff``) = 0 (Fisher; Smucker, Allan &
    Carterette, CIKM 2007). Exact over all 2^n sign patterns when that is at most ``n_resamples``;
    otherwise sampled, with the observed pattern counted: (hits + 1) / (n_resamples + 1), so p > 0."""
    diff = np.asarray(diff, dtype=np.float64)
    n = len(diff)
    observed = abs(diff.mean()) - 1e-12
    if 2 ** n <= n_resamples:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return float((np.abs(signs @ diff / n) >= observed).mean()), "exact"
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_resamples, 2000):
        signs = rng.choice((-1.0, 1.0), size=(min(2000, n_resamples - start), n))
        hits += int((np.abs(signs @ diff / n) >= observed).sum())
    return (hits + 1) / (n_resamples + 1), "sampled"


def paired_test(a: Results, b: Results, metric: str = "ndcg@10", method: str = "t-test",
                n_resamples: int = 10_000, seed: int = 0) -> PairedTest:
    """Two-sided paired test of b against a over their common queries: ``t-test`` (Student's
    paired t) or ``randomization`` (sign flips, exact when 2^n is small; see :func:`randomization_p`)."""
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
        p, how = randomization_p(diff, n_resamples, seed)
        method = f"randomization ({how})"
    else:
        raise ValueError(f"unknown method {method!r}: use 't-test' or 'randomization'")
    low, high = mean_interval(diff)
    return PairedTest(metric, float(x.mean()), float(y.mean()), float(diff.mean()), p, len(common), method, low, high)


def mean_interval(diff: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` confidence interval of the mean of ``diff`` (Student's t; a zero-spread list
    gives a point)."""
    from scipy import stats

    diff = np.asarray(diff, dtype=np.float64)
    if len(diff) < 2:
        return float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)))
    return float(diff.mean() - half), float(diff.mean() + half)


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
