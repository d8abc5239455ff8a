"""How deep to rerank: depth sweeps with a peak-and-fall check, and the best pipeline under a latency budget.

Usage::

    result = sweep(dataset, "hybrid>>ce", depths=(10, 20, 50))     # one row per depth, peak marked
    exp = depth_sweep(dataset, hybrid(), reranker, depths=(10, 20))  # an Experiment, one pipeline per depth
    best_under_budget(exp.table(), budget_ms=500)
    depth_table(exp)                   # one row per depth: metric, Δ vs the first stage [95% CI], p, cost, clean split
    choose_depth(exp).sentence()       # the smallest depth not detectably below the best one
    choose_under_budget(exp, 100)      # the cheapest pipeline within 100 ms p95 not detectably below the best that fits
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..core.data import Dataset
from ..core.stage import Cutoff, FirstStage, FixedRun, Stage
from ..specs import parse_pipeline
from .experiment import Experiment
from .significance import Choice, choose

SPLIT_PREFIXES = ("clean_", "contaminated_")


def depth_sweep(dataset: Dataset, first_stage: Stage, reranker, depths: Sequence[int] = (10, 20, 50, 100, 200),
                metrics: Sequence[str] = ("ndcg@10",), baseline: bool = True, trained_on: Sequence = ()) -> Experiment:
    """One pipeline ``first_stage % k >> reranker`` per depth k (the first stage runs once, and
    the reranker scores each document once: deeper lists reuse the shallower scores from its
    cache), plus the first stage alone as the baseline. Names: ``"<reranker>@<k>"``."""
    from ..core.stage import as_stage

    stage = as_stage(reranker)
    deepest = (first_stage % max(depths))(dataset) if isinstance(first_stage, FirstStage) else first_stage(dataset)
    pipelines: dict[str, Stage] = {}
    if baseline:
        pipelines[first_stage.name] = FixedRun(deepest, first_stage.name)
    for k in sorted(depths):
        pipelines[f"{stage.name}@{k}"] = FixedRun(deepest.top(k), f"{first_stage.name}%{k}") >> stage
    return Experiment(dataset, pipelines, metrics=metrics, baseline=first_stage.name if baseline else None,
                      trained_on=trained_on)


@dataclass
class Sweep:
    """A depth sweep's result: one row per depth, the peak, and what the curve says."""

    dataset: str
    pipeline: str
    metric: str
    first_stage: float
    rows: list[dict]
    peak_depth: int
    depth_90: int
    peaks_and_falls: bool

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "pipeline": self.pipeline, "metric": self.metric,
                "first_stage": round(self.first_stage, 4), "rows": self.rows, "peak_depth": self.peak_depth,
                "depth_reaching_90pct_of_peak_gain": self.depth_90, "peaks_and_falls": self.peaks_and_falls}


def sweep(dataset: Dataset, pipeline: str | Stage, depths: Sequence[int] = (10, 20, 50, 100), metric: str = "ndcg@10",
          fall: float = 0.002, trained_on: Sequence = ()) -> Sweep:
    """Rerank the first stage's top k for each depth k (scores cached, so each document is scored
    once), with metric and model seconds per query per depth; marks the peak, the smallest depth
    reaching 90% of the peak gain over the first stage, and whether the curve peaks and then falls
    by more than ``fall`` (published depth studies find that about a fifth of curves do). A reranker
    with training judgments (recorded, or stated in ``trained_on``) gets each depth's clean /
    contaminated split (:class:`~rerank_lab.analysis.experiment.Experiment`'s columns).

    ``pipeline``: ``"first>>reranker"`` (a spec or a two-stage cascade); a reranker mixed with its
    first stage over a tuned ``rerank_depth`` is swept over every candidate instead."""
    from dataclasses import replace as _replace

    from ..core.interpolate import Interpolate

    stage = parse_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    parts = stage.stages
    if len(parts) != 2:
        raise ValueError(f"sweep takes a first stage and one reranker, e.g. 'hybrid>>ce'; got {stage.name!r}")
    first, reranker = parts
    first = first.stage if isinstance(first, Cutoff) else first
    if isinstance(reranker, Interpolate) and reranker.rerank_depth is not None:
        reranker = _replace(reranker, rerank_depth=None)
    exp = depth_sweep(dataset, first, reranker, depths, metrics=(metric, "judged@10"), trained_on=trained_on)
    table = {r["name"]: r for r in exp.table()}
    base = table[first.name][metric]
    rows = []
    for k in sorted(depths):
        row = next(r for n, r in table.items() if n.endswith(f"@{k}"))
        run = exp.runs[row["name"]]
        model = run.costs[-1].per_query("model")
        rows.append({"depth": k, metric: row[metric], "gain": round(row[metric] - base, 4),
                     "model_seconds_per_query": round(float(np.mean(list(model.values()))) if model else 0.0, 4),
                     "judged@10": round(exp.results[row["name"]].means.get("judged@10", float("nan")), 4)
                     if "judged@10" in exp.results[row["name"]].means else None,
                     **{c: v for c, v in row.items() if c.startswith(SPLIT_PREFIXES) or c in ("trained_on", "memory", "contamination_note")}})
    best = max(rows, key=lambda r: (r[metric], -r["depth"]))
    target = base + 0.9 * (best[metric] - base)
    depth_90 = next(r["depth"] for r in rows if r[metric] >= target - 1e-12)
    falls = best["depth"] != rows[-1]["depth"] and rows[-1][metric] < best[metric] - fall
    for r in rows:
        r["peak"] = r["depth"] == best["depth"]
    return Sweep(dataset.name, stage.name, metric, base, rows, best["depth"], depth_90, falls)


def best_under_budget(rows: Sequence[Mapping], budget_ms: float, latency: str = "model_p95_ms",
                      quality: str = "ndcg@10") -> Mapping | None:
    """The best row (e.g. of ``Experiment.table()``) whose per-query latency fits the budget;
    by default the p95 **model** latency (what a query costs with empty caches)."""
    fitting = [r for r in rows if r[latency] <= budget_ms]
    return max(fitting, key=lambda r: r[quality]) if fitting else None



def depth_of(name: str) -> int | None:
    """The depth k of a :func:`depth_sweep` pipeline name ``"<reranker>@<k>"`` (None for others)."""
    head, _, k = name.rpartition("@")
    return int(k) if head and k.isdigit() else None


def depth_table(experiment: Experiment, metric: str | None = None, latency: str = "model_median_ms") -> list[dict]:
    """One row per depth of a :func:`depth_sweep` experiment: the metric, its difference against the
    first stage alone (the experiment's baseline) with the 95% interval and raw / Holm p, the per-query
    latency, and for a trained reranker the change against its input on the clean and the
    contaminated queries (:mod:`~rerank_lab.analysis.contamination`)."""
    metric = metric or experiment.metrics[0]
    rows = []
    for row in experiment.table():
        k = depth_of(row["name"])
        if k is None:
            continue
        out = {"reranker": row["name"].rpartition("@")[0], "depth": k, metric: row[metric],
               f"Δ vs {experiment.baseline}": row.get(f"delta_{metric}"), "95% CI": row.get("ci95"),
               "p": row.get("p_raw"), "p (Holm)": row.get("p_holm"), latency: row.get(latency)}
        for part in ("clean", "contaminated"):
            if f"{part}_queries" in row:
                out.update({f"{part} queries": row[f"{part}_queries"], f"{part} Δ vs input": row.get(f"{part}_delta_vs_input"),
                            f"{part} 95% CI": row.get(f"{part}_ci95"), f"{part} p (Holm)": row.get(f"{part}_p")})
        rows.append(out)
    return sorted(rows, key=lambda r: (r["reranker"], r["depth"]))


def depth_curve(experiment: Experiment, metric: str | None = None) -> dict[int, float]:
    """``{depth: metric}`` of a :func:`depth_sweep` experiment (for :func:`~rerank_lab.analysis.plots.depth_curves`)."""
    metric = metric or experiment.metrics[0]
    return {r["depth"]: r[metric] for r in depth_table(experiment, metric)}


def choose_depth(experiment: Experiment, metric: str | None = None, cost: str = "model_median_ms") -> Choice:
    """The smallest (cheapest) depth of a :func:`depth_sweep` experiment whose metric is not detectably
    below the best depth's (:func:`~rerank_lab.analysis.significance.choose`)."""
    names = [r["name"] for r in experiment.table() if depth_of(r["name"]) is not None]
    return choose(experiment, names, cost=cost, metric=metric)


@dataclass(frozen=True)
class BudgetChoice:
    """A latency budget's pick: the :class:`~rerank_lab.analysis.significance.Choice` among the pipelines
    that fit (None when nothing fits), and the pipelines that fit."""

    budget_ms: float
    latency: str
    fitting: tuple[str, ...]
    choice: Choice | None

    def sentence(self) -> str:
        label = f"p95 ≤ {self.budget_ms:g} ms"
        if self.choice is None:
            return f"{label}: nothing fits."
        if len(self.fitting) == 1:
            return f"{label}: only **{self.fitting[0]}** fits."
        return self.choice.sentence(label)


def choose_under_budget(experiment: Experiment, budget_ms: float, latency: str = "model_p95_ms",
                        metric: str | None = None) -> BudgetChoice:
    """Among the pipelines whose per-query ``latency`` fits ``budget_ms``, the cheapest one not
    detectably below the best-scoring one that fits (paired tests against it, Holm over as many
    comparisons as the experiment has pipelines besides it, whatever the budget: a larger budget
    never calls noise what a smaller one called a detectable drop). Unlike :func:`best_under_budget`,
    a pipeline ahead by noise does not win."""
    rows = experiment.table()
    fitting = tuple(r["name"] for r in rows if r[latency] <= budget_ms)
    choice = (choose(experiment, list(fitting), cost=latency, metric=metric, family_size=len(rows) - 1)
              if fitting else None)
    return BudgetChoice(budget_ms, latency, fitting, choice)

