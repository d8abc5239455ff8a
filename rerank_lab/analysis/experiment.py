"""Declarative comparison of pipelines, in the spirit of PyTerrier's ``pt.Experiment``.

An ``Experiment`` is a value: building it runs nothing; :meth:`Experiment.run` (or the first
look at its results) runs every pipeline, computing each shared prefix once (stages compare by
value, so the same first stage or the same reranker at the same depth is one computation).
The table carries metrics, the difference and significance against a baseline (Holm-corrected
across the comparisons) and cost on both clocks: **model** latency (what each query costs with
empty caches: the honest figure, the default) and wall time (what this run spent).
``save`` writes one TREC run per pipeline and a JSON manifest (versions, dataset fingerprint,
stage parameters, model identities, metrics).

Usage::

    exp = Experiment(dataset, ["bm25", "hybrid", "hybrid>>ce"], baseline="hybrid").run()
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

from ..core.cost import add_counters
from ..core.data import Dataset
from ..core.executor import Executor, InProcess
from ..core.files import atomic_write_text
from ..core.progress import job_progress
from ..core.run import Run
from ..core.stage import Cascade, Cutoff, FirstStage, FixedRun, Rerank, Scorer, Stage
from ..specs import parse_pipeline
from .evaluate import DEFAULT_METRICS, Results, evaluate, holm, paired_test

LIFT_RERANKERS = ("maxsim", "colbert", "ce")
COST_COUNTERS = ("llm_calls", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cache_hits")


def lift_pipelines(first_stage: str = "hybrid", rerankers: Sequence[str] = LIFT_RERANKERS) -> dict[str, Stage]:
    """The lift chart's pipelines by spec: BM25, dense, hybrid, then ``first_stage>>name`` for each
    reranker that loads here (lab-trained weights present). LLM rerankers are left out: too slow
    for full test sets on a CPU. When zero-shot MaxSim is among them, the hybrid's dense encoder
    keeps its token states for it (one forward pass over the corpus serves both; no result changes)."""
    from ..first_stage import BM25, RRF, Dense
    from ..rerankers import ready

    specs = ["bm25", "dense", "hybrid"] + [f"{first_stage}>>{name}" for name in rerankers if ready(name)]
    shared: dict[str, Stage] = {}
    if "maxsim" in rerankers:  # whichever of dense and hybrid encodes the corpus first keeps the tokens
        shared["dense"] = Dense(keep_token_states=True)
        shared["hybrid"] = RRF((BM25(), shared["dense"]))
    return {spec: parse_pipeline(spec, shared) for spec in specs}


def _key(stage: Stage) -> object:
    """What a step computes: a reranker and the stage that reranks with it are one computation."""
    target = stage.reranker if isinstance(stage, Rerank) else stage
    try:
        hash(target)
        return target
    except TypeError:  # an unhashable user object: shared only with itself
        return ("object", id(target))


class PrefixCache:
    """Runs of pipeline prefixes, so pipelines that share a prefix compute it once."""

    def __init__(self, executor: Executor | None = None) -> None:
        self._runs: dict[tuple, Run] = {}
        self.executor = executor or InProcess()

    def steps(self, pipeline: Stage) -> list[tuple[Stage, bool]]:
        """(step, is_cut) pairs: a cut reranker is the reranker, then a cut, so ``ce`` and
        ``ce % 20`` share their scoring."""
        out = []
        for stage in pipeline.stages:
            if isinstance(stage, Cutoff) and not isinstance(stage.stage, FirstStage):
                out += [(stage.stage, False), (stage, True)]
            else:
                out.append((stage, False))
        return out

    def run(self, pipeline: Stage, dataset: Dataset) -> Run:
        run, key = None, ()
        for step, is_cut in self.steps(pipeline):
            key = key + ((("cut", step.k) if is_cut else _key(step)),)
            if key not in self._runs:
                self._runs[key] = run.top(step.k) if is_cut else \
                    self.executor.transform(step, dataset.queries, dataset.corpus, run)
            run = self._runs[key]
        assert run is not None
        return run

    def cached(self, pipeline: Stage) -> bool:
        key = ()
        for step, is_cut in self.steps(pipeline):
            key = key + ((("cut", step.k) if is_cut else _key(step)),)
        return key in self._runs


def planned_items(stages: Mapping[str, Stage], queries: int, candidates: int = 100) -> int:
    """A rough count of the items the rerankers of ``stages`` will score (for a progress bar)."""
    seen, total = set(), 0
    for stage in stages.values():
        depth, prefix = candidates, ()
        for step in stage.stages:
            prefix = prefix + (_key(step),)
            if isinstance(step, Cutoff):
                depth = min(depth, step.k) if not isinstance(step.stage, FirstStage) else step.k
                step = step.stage
            if isinstance(step, (Rerank, Scorer)) or hasattr(step, "scorer"):
                if prefix not in seen:
                    seen.add(prefix)
                    rerank_depth = getattr(step, "rerank_depth", None)
                    total += queries * min(depth, rerank_depth or depth)
    return total


@dataclass
class Experiment:
    """Evaluate named pipelines on one dataset. Pipelines are specs or Stage objects."""

    dataset: Dataset
    pipelines: Sequence[str | Stage] | Mapping[str, str | Stage]
    metrics: Sequence[str] = DEFAULT_METRICS
    baseline: str | None = None
    test: str = "t-test"
    progress: bool = True
    executor: Executor | None = None
    stages: dict[str, Stage] = field(init=False)
    _runs: dict[str, Run] = field(default_factory=dict, init=False, repr=False)
    _results: dict[str, Results] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        named = self.pipelines if isinstance(self.pipelines, Mapping) else {
            p if isinstance(p, str) else p.name: p for p in self.pipelines}
        shared: dict[str, Stage] = {}
        self.stages = {name: parse_pipeline(p, shared) if isinstance(p, str) else p for name, p in named.items()}
        if self.baseline is not None and self.baseline not in self.stages:
            raise ValueError(f"baseline {self.baseline!r} is not one of the pipelines: {', '.join(self.stages)}")

    def run(self) -> "Experiment":
        """Run every pipeline not run yet (shared prefixes once); returns self."""
        if len(self._runs) == len(self.stages):
            return self
        cache = PrefixCache(self.executor)
        total = planned_items(self.stages, len(self.dataset.queries))
        with job_progress(total, desc=f"{self.dataset.name}: {len(self.stages)} pipelines", disable=not self.progress):
            for name, stage in self.stages.items():
                run = cache.run(stage, self.dataset).rename(name)
                self._runs[name] = run
                self._results[name] = evaluate(run, self.dataset.qrels, self.metrics, self.dataset.ignore_identical_ids,
                                               name=name)
        return self

    @property
    def runs(self) -> dict[str, Run]:
        return self.run()._runs

    @property
    def results(self) -> dict[str, Results]:
        return self.run()._results

    def significance(self, metric: str | None = None) -> dict[str, tuple[float, float]]:
        """``{pipeline: (raw p, Holm-adjusted p)}`` against the baseline."""
        if self.baseline is None:
            return {}
        metric = metric or self.metrics[0]
        others = [n for n in self.results if n != self.baseline]
        raw = [paired_test(self.results[self.baseline], self.results[n], metric, self.test).p_value
               if self.results[n].queries > 1 else 1.0 for n in others]
        return {n: (p, q) for n, p, q in zip(others, raw, holm(raw) if raw else [])}

    def table(self, clock: str = "model") -> list[dict]:
        """One row per pipeline: metrics, the difference and Holm-adjusted p against the baseline,
        and cost: per-query latency on ``clock`` (``"model"``: with empty caches, the default;
        ``"wall"``: as spent in this run), total seconds on both clocks, items scored, LLM tokens."""
        sig = self.significance()
        first = self.metrics[0]
        rows = []
        for name, res in self.results.items():
            run = self.runs[name]
            latencies = list(run.query_seconds(clock).values()) or [0.0]
            row = {"name": name, **{m: round(res.means[m], 4) for m in self.metrics}, "queries": res.queries}
            if self.baseline is not None:
                base = self.results[self.baseline].means[first]
                row[f"delta_{first}"] = None if name == self.baseline else round(res.means[first] - base, 4)
                row["p_holm"] = None if name == self.baseline else round(sig[name][1], 4)
            counters = add_counters(*(c.counters for c in run.costs))
            row.update({
                f"{clock}_median_ms": round(1000 * float(np.median(latencies)), 2),
                f"{clock}_p95_ms": round(1000 * float(np.quantile(latencies, 0.95)), 2),
                "model_seconds": round(run.total_seconds("model"), 2),
                "wall_seconds": round(run.total_seconds("wall"), 2),
                "items_scored": sum(c.items_scored for c in run.costs),
                **{k: int(v) for k, v in counters.items() if k in COST_COUNTERS},
            })
            rows.append(row)
        return rows

    def markdown(self, columns: Sequence[str] | None = None, clock: str = "model") -> str:
        rows = self.table(clock)
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
            "machine": machine(),
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
                metrics: Sequence[str] = ("ndcg@10",), baseline: bool = True) -> Experiment:
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
    return Experiment(dataset, pipelines, metrics=metrics, baseline=first_stage.name if baseline else None)


def best_under_budget(rows: Sequence[Mapping], budget_ms: float, latency: str = "model_p95_ms",
                      quality: str = "ndcg@10") -> Mapping | None:
    """The best row (e.g. of ``Experiment.table()``) whose per-query latency fits the budget;
    by default the p95 **model** latency (what a query costs with empty caches)."""
    fitting = [r for r in rows if r[latency] <= budget_ms]
    return max(fitting, key=lambda r: r[quality]) if fitting else None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.%-]+", "_", name.replace(">>", "__")).strip("_")


def machine() -> dict[str, str]:
    """The CPU (and GPU) a measurement ran on, for every timing we publish."""
    info = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
        info["cpu_flags"] = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx_vnni")
                                     if f" {f}" in flags) or "none of avx2/avx512/amx"
    except OSError:
        pass
    import os

    info["cores"] = str(os.cpu_count())
    return info


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("rerank-lab", "torch", "transformers", "sentence-transformers", "bm25s", "colbert-ai",
                    "openvino", "llama-cpp-python", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def describe(stage: Stage) -> list[dict]:
    """Parameters of each stage: its class, plain settings and model identity."""
    from dataclasses import fields, is_dataclass

    out = []
    for s in stage.stages:
        depth = None
        if isinstance(s, Cutoff):
            s, depth = s.stage, s.k
        target = s.reranker if isinstance(s, Rerank) else s
        params = {f.name: getattr(target, f.name) for f in fields(target)} if is_dataclass(target) else {}
        params = {k: v for k, v in params.items() if isinstance(v, (str, int, float, bool, type(None)))}
        entry = {"name": s.name, "class": f"{type(target).__module__}.{type(target).__qualname__}", "depth": depth,
                 "params": params}
        identity = getattr(target, "identity", None)
        if callable(identity):
            try:
                entry["identity"] = identity()
            except Exception:  # noqa: BLE001 - identity is best effort (a hub id that is not downloaded)
                pass
        inner = [getattr(target, a) for a in ("inputs",) if hasattr(target, a)]
        if inner:
            entry["inputs"] = [d for stages in inner for x in stages for d in describe(x)]
        if isinstance(target, Cascade):
            entry["stages"] = describe(target)
        out.append(entry)
    return out
