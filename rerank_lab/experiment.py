"""Declarative comparison of pipelines, in the spirit of PyTerrier's ``pt.Experiment``.

Shared prefixes (the same first stage, the same reranker at the same depth) run once;
the table carries metrics, significance against a baseline with Holm correction across
the comparisons, and cost (total seconds, median/p95 latency per query, items scored,
LLM tokens). ``save`` writes one TREC run per pipeline plus a JSON manifest (versions,
dataset fingerprint, pipeline parameters, model identities, metrics) for reproducible,
diffable reruns.

Usage::

    exp = Experiment(dataset, ["bm25", "hybrid", "hybrid>>ce"], baseline="hybrid")
    exp.table()                     # list of dicts, one per pipeline
    exp.save("results/scifact")     # runs/*.trec + manifest.json
"""
from __future__ import annotations

import json
import platform
import re
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .cache import atomic_write_text
from .data import Dataset
from .evaluate import DEFAULT_METRICS, Results, evaluate, holm, paired_test
from .pipeline import Cascade, Cutoff, FirstStage, Rerank, Stage
from .run import Run
from .specs import parse_pipeline


LIFT_RERANKERS = ("maxsim", "colbert", "ce")


def lift_pipelines(first_stage: str = "hybrid", rerankers: Sequence[str] = LIFT_RERANKERS) -> list[str]:
    """BM25, dense, hybrid, then ``first_stage>>name`` for each reranker that loads here
    (lab-trained weights present). LLM rerankers are left out: too slow for full test sets on CPU."""
    from .rerankers import ready

    return ["bm25", "dense", "hybrid"] + [f"{first_stage}>>{name}" for name in rerankers if ready(name)]


def stage_key(stage: Stage) -> tuple:
    """Identity of what a stage computes: the same object at the same depth."""
    if isinstance(stage, Cutoff):
        return ("cut", stage_key(stage.stage), stage.depth)
    if isinstance(stage, Rerank):
        return ("rerank", id(stage.reranker))
    return ("stage", id(stage))


class PrefixCache:
    """Runs of pipeline prefixes, so cascades that share a prefix compute it once."""

    def __init__(self) -> None:
        self._runs: dict[tuple, Run] = {}

    def run(self, pipeline: Stage, dataset: Dataset) -> Run:
        stages = pipeline.stages if isinstance(pipeline, Cascade) else [pipeline]
        run, key = None, ()
        for stage in stages:
            # A cut reranker is the reranker, then a cut: ``ce`` and ``ce % 20`` share the scoring.
            steps = [stage.stage, stage] if isinstance(stage, Cutoff) and not isinstance(stage.stage, FirstStage) \
                else [stage]
            for step in steps:
                key = key + (stage_key(step),)
                if key not in self._runs:
                    if step is stage and len(steps) == 2:
                        self._runs[key] = run.top(stage.depth)
                    else:
                        self._runs[key] = step.transform(dataset.queries, dataset.corpus, run)
                run = self._runs[key]
        assert run is not None
        return run


@dataclass
class Experiment:
    """Evaluate named pipelines on one dataset. Pipelines are specs or Stage objects."""

    dataset: Dataset
    pipelines: Sequence[str | Stage] | Mapping[str, str | Stage]
    metrics: Sequence[str] = DEFAULT_METRICS
    baseline: str | None = None
    test: str = "t-test"
    runs: dict[str, Run] = field(default_factory=dict, init=False)
    results: dict[str, Results] = field(default_factory=dict, init=False)
    stages: dict[str, Stage] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        named = self.pipelines if isinstance(self.pipelines, Mapping) else {
            p if isinstance(p, str) else p.name: p for p in self.pipelines}
        shared: dict[str, Stage] = {}
        self.stages = {name: parse_pipeline(p, shared) if isinstance(p, str) else p for name, p in named.items()}
        if self.baseline is not None and self.baseline not in self.stages:
            raise ValueError(f"baseline {self.baseline!r} is not one of the pipelines: {', '.join(self.stages)}")
        cache = PrefixCache()
        for name, stage in self.stages.items():
            run = cache.run(stage, self.dataset)
            run = Run(run.rankings, name, list(run.costs))
            self.runs[name] = run
            self.results[name] = evaluate(run, self.dataset.qrels, self.metrics,
                                          self.dataset.ignore_identical_ids, name=name)

    def significance(self, metric: str | None = None) -> dict[str, tuple[float, float]]:
        """``{pipeline: (raw p, Holm-adjusted p)}`` against the baseline."""
        if self.baseline is None:
            return {}
        metric = metric or self.metrics[0]
        others = [n for n in self.results if n != self.baseline]
        raw = [paired_test(self.results[self.baseline], self.results[n], metric, self.test).p_value
               if self.results[n].queries > 1 else 1.0 for n in others]
        return {n: (p, q) for n, p, q in zip(others, raw, holm(raw) if raw else [])}

    def table(self) -> list[dict]:
        """One row per pipeline: metrics, significance vs the baseline, cost."""
        sig = self.significance()
        rows = []
        for name, res in self.results.items():
            run = self.runs[name]
            latencies = sorted(run.query_seconds().values()) or [0.0]
            row = {"name": name, **{m: round(res.means[m], 4) for m in self.metrics}, "queries": res.queries}
            if self.baseline is not None:
                row["p_holm"] = None if name == self.baseline else round(sig[name][1], 4)
            counters: dict[str, int] = {}
            for cost in run.costs:
                for k, v in cost.counters.items():
                    counters[k] = counters.get(k, 0) + v
            row.update({
                "seconds": round(run.total_seconds(), 2),
                "median_ms": round(1000 * float(np.median(latencies)), 2),
                "p95_ms": round(1000 * float(np.quantile(latencies, 0.95)), 2),
                "items_scored": sum(c.items_scored for c in run.costs),
                **{k: v for k, v in counters.items() if "token" in k or k == "llm_calls"},
            })
            rows.append(row)
        return rows

    def markdown(self, columns: Sequence[str] | None = None) -> str:
        rows = self.table()
        columns = list(columns or rows[0].keys())
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            lines.append("| " + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in columns) + " |")
        return "\n".join(lines)

    def save(self, folder: str | Path) -> Path:
        """TREC runs + manifest.json; every file written atomically."""
        folder = Path(folder)
        for name, run in self.runs.items():
            run.write_trec(folder / "runs" / f"{_safe(name)}.trec", tag=_safe(name))
        manifest = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "dataset": {"name": self.dataset.name, "split": self.dataset.split,
                        "queries": len(self.dataset.queries), "documents": len(self.dataset.corpus),
                        "corpus_fingerprint": self.dataset.fingerprint},
            "versions": versions(),
            "metrics": list(self.metrics),
            "baseline": self.baseline,
            "pipelines": {name: {"run": f"runs/{_safe(name)}.trec", "stages": describe(stage)}
                          for name, stage in self.stages.items()},
            "table": self.table(),
        }
        atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")
        return folder


def depth_sweep(dataset: Dataset, first_stage: Stage, reranker, depths: Sequence[int] = (10, 20, 50, 100, 200),
                metrics: Sequence[str] = ("ndcg@10",)) -> Experiment:
    """One pipeline ``first_stage % k >> reranker`` per depth k (the first stage runs once)."""
    from .pipeline import Rerank

    stage = reranker if isinstance(reranker, Stage) else Rerank(reranker)
    retrieved = first_stage.retrieve(dataset.queries, dataset.corpus, max(depths)) \
        if hasattr(first_stage, "retrieve") else first_stage(dataset)
    pipelines = {f"{stage.name}@{k}": _Fixed(retrieved.top(k), f"{first_stage.name}%{k}") >> stage for k in depths}
    return Experiment(dataset, pipelines, metrics=metrics)


class _Fixed(Stage):
    """A precomputed run as a stage (so a depth sweep retrieves once)."""

    def __init__(self, run: Run, name: str):
        self.run, self.name = run, name

    def transform(self, queries, corpus, previous=None):
        return self.run.subset(queries)


def best_under_budget(rows: Sequence[Mapping], budget_ms: float, latency: str = "p95_ms",
                      quality: str = "ndcg@10") -> Mapping | None:
    """The best row (e.g. of ``Experiment.table()``) whose per-query latency fits the budget."""
    fitting = [r for r in rows if r[latency] <= budget_ms]
    return max(fitting, key=lambda r: r[quality]) if fitting else None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.%-]+", "_", name.replace(">>", "__")).strip("_")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("rerank-lab", "torch", "transformers", "sentence-transformers", "bm25s", "colbert-ai",
                    "pytrec-eval-terrier", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def describe(stage) -> list[dict]:
    """Parameters of each stage: its class, plain attributes and model identity."""
    from .models import model_identity

    stages = stage.stages if isinstance(stage, Cascade) else [stage]
    out = []
    for s in stages:
        depth = None
        if isinstance(s, Cutoff):
            s, depth = s.stage, s.depth
        target = s.reranker if isinstance(s, Rerank) else s
        params = {k: v for k, v in vars(target).items()
                  if not k.startswith("_") and isinstance(v, (str, int, float, bool, type(None)))}
        entry = {"name": s.name, "class": f"{type(target).__module__}.{type(target).__qualname__}", "depth": depth,
                 "params": params}
        for attr in ("model_name", "model", "checkpoint"):
            value = getattr(target, attr, None)
            if isinstance(value, str):
                try:
                    entry["model_identity"] = model_identity(value)
                except Exception:  # identity is best effort: a hub id stays as given
                    entry["model_identity"] = value
                break
        if hasattr(target, "inputs"):
            entry["inputs"] = [d for inner in target.inputs for d in describe(inner)]
        out.append(entry)
    return out
