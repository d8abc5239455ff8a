"""Declarative comparison of pipelines, in the spirit of PyTerrier's ``pt.Experiment``.

An ``Experiment`` is a value: building it runs nothing; :meth:`Experiment.run` (or the first
look at its results) runs every pipeline, computing each shared prefix once (stages compare by
value, so the same first stage or the same reranker at the same depth is one computation).
The table carries metrics, the difference and significance against a baseline (Holm-corrected
across the comparisons), an **alarm where reranking hurt** (every reranking stage tested against
its own input, Holm-corrected across the table: a significant drop is marked and warned about),
and cost on both clocks: **model** latency (what each query costs with
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
import warnings
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

#: the main job's rerankers: the lab cross-encoder alone (a cold SciFact lift took 9.2 minutes on 2 CPU cores, against
#: 19 with ColBERT's and MaxSim's document encodings); notebook 01 draws all three
LIFT_RERANKERS = ("ce",)
ALL_LIFT_RERANKERS = ("maxsim", "colbert", "ce")
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
            if isinstance(step, FixedRun):  # a precomputed run knows its depth; 100 would overstate it
                depth = max((len(ranking) for ranking in step.run.rankings.values()), default=0)
            cut = None
            if isinstance(step, Cutoff):  # a first stage retrieves only k; any other stage is cut after it ran
                depth, cut = (step.k, None) if isinstance(step.stage, FirstStage) else (depth, step.k)
                step = step.stage
            if isinstance(step, (Rerank, Scorer)) or hasattr(step, "scorer"):
                if prefix not in seen:
                    seen.add(prefix)
                    rerank_depth = getattr(step, "rerank_depth", None)
                    total += queries * min(depth, rerank_depth or depth)
            if cut is not None:
                depth = min(depth, cut)
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
    empty_rankings: str = "zero"
    alarm_level: float = 0.05
    stages: dict[str, Stage] = field(init=False)
    _runs: dict[str, Run] = field(default_factory=dict, init=False, repr=False)
    _results: dict[str, Results] = field(default_factory=dict, init=False, repr=False)
    _inputs: dict[str, Results] = field(default_factory=dict, init=False, repr=False)

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
                self._results[name] = self._evaluate(run, name)
                if len(stage.stages) > 1:  # a reranking pipeline: its own input, for the alarm
                    self._inputs[name] = self._evaluate(cache.run(Cascade(stage.stages[:-1]), self.dataset), name)
        for line in self.alarms():
            warnings.warn(line, RerankingHurt, stacklevel=2)
        return self

    def _evaluate(self, run: Run, name: str) -> Results:
        return evaluate(run, self.dataset.qrels, self.metrics, self.dataset.ignore_identical_ids, name=name,
                        empty_rankings=self.empty_rankings)

    def versus_input(self, metric: str | None = None) -> dict[str, tuple[float, float]]:
        """``{pipeline: (metric change against its own input, Holm-adjusted p)}`` for every pipeline
        whose last stage reranks (the input is the pipeline without that stage)."""
        metric = metric or self.metrics[0]
        names = [n for n in self.results if n in self._inputs and self.results[n].queries > 1]
        tests = [paired_test(self._inputs[n], self.results[n], metric, self.test) for n in names]
        adjusted = holm([t.p_value for t in tests]) if tests else []
        return {n: (t.delta, p) for n, t, p in zip(names, tests, adjusted)}

    def hurt(self, metric: str | None = None) -> dict[str, tuple[float, float]]:
        """The pipelines whose last stage significantly lowered ``metric`` against its own input."""
        return {n: (d, p) for n, (d, p) in self.versus_input(metric).items() if d < 0 and p < self.alarm_level}

    def alarms(self, metric: str | None = None) -> list[str]:
        """One line per reranking stage that hurt, naming the dataset and the stage."""
        metric = metric or self.metrics[0]
        return [f"reranking hurt on {self.dataset.name}/{self.dataset.split}: {name} lowers {metric} by {-d:.4f} "
                f"against its own input {self.stages[name].stages[-2].name} (paired {self.test}, Holm p={p:.3g})"
                for name, (d, p) in self.hurt(metric).items()]

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
        vs_input, hurt = self.versus_input(), self.hurt()
        rows = []
        for name, res in self.results.items():
            run = self.runs[name]
            latencies = list(run.query_seconds(clock).values()) or [0.0]
            row = {"name": name, **{m: round(res.means[m], 4) for m in self.metrics}, "queries": res.queries,
                   "empty_rankings": res.empty_rankings}
            if name in vs_input:
                row[f"vs_input_{first}"] = round(vs_input[name][0], 4)
                row["hurt"] = name in hurt
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
        """The table as markdown; a reranking stage that hurt is marked **⚠ hurt** in its name cell.
        The empty-rankings convention is stated under the table."""
        rows = self.table(clock)
        columns = list(columns or rows[0].keys())
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            cells = []
            for c in columns:
                value = "" if row.get(c) is None else str(row.get(c))
                if c == "name" and row.get("hurt"):
                    value += " **⚠ hurt**"
                cells.append(value)
            lines.append("| " + " | ".join(cells) + " |")
        empty = max((r["empty_rankings"] for r in rows), default=0)
        note = (f"\n\nJudged queries with no ranking ({empty} at most here) count as 0 (trec_eval -c)."
                if self.empty_rankings == "zero" else "\n\nQueries with no ranking are left out (as pytrec_eval).")
        return "\n".join(lines) + note

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


class RerankingHurt(UserWarning):
    """A reranking stage scored significantly below its own input (Experiment's alarm)."""


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
          fall: float = 0.002) -> Sweep:
    """Rerank the first stage's top k for each depth k (scores cached, so each document is scored
    once), with metric and model seconds per query per depth; marks the peak, the smallest depth
    reaching 90% of the peak gain over the first stage, and whether the curve peaks and then falls
    by more than ``fall`` (published depth studies find that about a fifth of curves do).

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
    exp = depth_sweep(dataset, first, reranker, depths, metrics=(metric, "judged@10"))
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
                     if "judged@10" in exp.results[row["name"]].means else None})
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
