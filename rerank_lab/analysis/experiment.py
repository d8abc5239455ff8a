"""Declarative comparison of pipelines, in the spirit of PyTerrier's ``pt.Experiment``.

An ``Experiment`` is a value: building it runs nothing; :meth:`Experiment.run` (or the first
look at its results) runs every pipeline, computing each shared prefix once (stages compare by
value, so the same first stage or the same reranker at the same depth is one computation).
Its table carries, per pipeline:

- the metrics, and the difference against a baseline with a 95% interval, the raw paired p and
  the p Holm-corrected across the pipelines compared with the baseline;
- an **alarm where reranking hurt**: every reranking stage tested against its own input,
  Holm-corrected across the table's reranking stages; a significant drop is marked and warned about;
- **relevance or memory**: for every pipeline holding a model that recorded (or was stated to
  have) training judgments, the test queries split into clean and contaminated
  (:mod:`~rerank_lab.analysis.contamination`), with the change against the reranker's own input on
  each part (Holm-corrected across those pipelines, per part); a lift only on the contaminated part
  is marked and warned about (:class:`~rerank_lab.analysis.contamination.LiftFromMemory`);
- cost on both clocks: **model** latency (what each query costs with empty caches: the honest
  figure, the default) and wall time (what this run spent), and the device the models ran on
  (a column of the markdown table once one ran off the CPU; always in ``table()`` and the manifest).

``save`` writes one TREC run per pipeline and a JSON manifest (versions, dataset fingerprint,
stage parameters, model identities, metrics).

Usage::

    exp = Experiment(dataset, ["bm25", "hybrid", "hybrid>>ce"], baseline="hybrid").run()
    exp.table()                     # list of dicts, one per pipeline
    print(exp.markdown())           # the table, then what each Holm correction covers
    exp.save("results/scifact")     # runs/*.trec + manifest.json
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..core.cost import add_counters
from ..core.data import Dataset
from ..core.executor import Executor
from ..core.files import atomic_write_text
from ..core.progress import job_progress
from ..core.provenance import TrainingData, provenance
from ..core.run import Run
from ..core.stage import Cascade, Stage
from ..specs import parse_pipeline
from .contamination import (PARTS, ContaminationSplit, LiftFromMemory, PartLift, contamination, lift_by_part,
                            lift_from_memory, memory_message)
from .evaluate import DEFAULT_METRICS, PairedTest, Results, evaluate, holm, paired_test
from .manifest import describe, machine, safe_name, versions
from .prefix import PrefixCache, planned_items

COST_COUNTERS = ("llm_calls", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cache_hits")


@dataclass(frozen=True)
class Verdicts:
    """Every test an experiment reports, computed once after its runs: against the baseline,
    against each reranker's own input, and per contamination part."""

    baseline: dict[str, tuple[PairedTest, float]]          # name -> (test, Holm p)
    versus_input: dict[str, tuple[PairedTest, float]]      # name -> (test, Holm p)
    splits: dict[str, ContaminationSplit]
    parts: dict[str, dict[str, PartLift]]                  # name -> part -> lift (p_holm filled)
    trained_on: dict[str, tuple[str, ...]]


@dataclass
class Experiment:
    """Evaluate named pipelines on one dataset. Pipelines are specs or Stage objects.

    ``test``: the paired test of every comparison (``"t-test"`` or ``"randomization"``);
    ``condensed``: drop unjudged documents before scoring; ``trained_on``: judgments the user
    states the reranking pipelines' models learned from (``"dataset:split"``), beside what the
    models recorded themselves."""

    dataset: Dataset
    pipelines: Sequence[str | Stage] | Mapping[str, str | Stage]
    metrics: Sequence[str] = DEFAULT_METRICS
    baseline: str | None = None
    test: str = "t-test"
    progress: bool = True
    executor: Executor | None = None
    empty_rankings: str = "zero"
    alarm_level: float = 0.05
    condensed: bool = False
    trained_on: Sequence[str | TrainingData] = ()
    stages: dict[str, Stage] = field(init=False)
    _runs: dict[str, Run] = field(default_factory=dict, init=False, repr=False)
    _results: dict[str, Results] = field(default_factory=dict, init=False, repr=False)
    _inputs: dict[str, Results] = field(default_factory=dict, init=False, repr=False)
    _verdicts: Verdicts | None = field(default=None, init=False, repr=False)
    _tables: dict[str, list[dict]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        named = self.pipelines if isinstance(self.pipelines, Mapping) else {
            p if isinstance(p, str) else p.name: p for p in self.pipelines}
        if not named:
            raise ValueError("an Experiment needs at least one pipeline")
        shared: dict[str, Stage] = {}
        self.stages = {name: parse_pipeline(p, shared) if isinstance(p, str) else p for name, p in named.items()}
        if self.baseline is not None and self.baseline not in self.stages:
            raise ValueError(f"baseline {self.baseline!r} is not one of the pipelines: {', '.join(self.stages)}")
        self.metrics = list(self.metrics)
        self.trained_on = tuple(TrainingData.coerce(t) for t in self.trained_on)

    # -- running -----------------------------------------------------------------------
    def run(self) -> "Experiment":
        """Run every pipeline not run yet (shared prefixes once), test every comparison once and
        warn once per alarm; returns self."""
        if len(self._runs) == len(self.stages):
            return self
        cache = PrefixCache(self.executor)
        total = planned_items(self.stages, len(self.dataset.queries))
        with job_progress(total, desc=f"{self.dataset.name}: {len(self.stages)} pipeline{'s' * (len(self.stages) != 1)}", disable=not self.progress):
            for name, stage in self.stages.items():
                run = cache.run(stage, self.dataset).rename(name)
                self._runs[name] = run
                self._results[name] = self._evaluate(run, name)
                if len(stage.stages) > 1:  # a reranking pipeline: its own input, for the alarms
                    self._inputs[name] = self._evaluate(cache.run(Cascade(stage.stages[:-1]), self.dataset), name)
        self._verdicts = self._judge()
        for line in self.alarms():
            warnings.warn(line, RerankingHurt, stacklevel=2)
        for line in self.memory_alarms():
            warnings.warn(line, LiftFromMemory, stacklevel=2)
        return self

    def _evaluate(self, run: Run, name: str) -> Results:
        return evaluate(run, self.dataset.qrels, self.metrics, self.dataset.ignore_identical_ids, name=name,
                        empty_rankings=self.empty_rankings, condensed=self.condensed)

    def _judge(self) -> Verdicts:
        metric = self.metrics[0]
        results = self._results
        baseline: dict[str, tuple[PairedTest, float]] = {}
        if self.baseline is not None:
            others = [n for n in results if n != self.baseline and results[n].queries > 1]
            tests = [paired_test(results[self.baseline], results[n], metric, self.test) for n in others]
            baseline = dict(zip(others, zip(tests, holm([t.p_value for t in tests]) if tests else [])))
        names = [n for n in results if n in self._inputs and results[n].queries > 1]
        tests = [paired_test(self._inputs[n], results[n], metric, self.test) for n in names]
        versus = dict(zip(names, zip(tests, holm([t.p_value for t in tests]) if tests else [])))

        splits, parts, trained = {}, {}, {}
        for name in self._inputs:
            records = provenance(self.stages[name], self.trained_on)
            if not records:
                continue  # zero-shot: nothing to be contaminated by
            trained[name] = tuple(dict.fromkeys(r.label for r in records))
            splits[name] = contamination(self.dataset, records)
            parts[name] = lift_by_part(results[name], self._inputs[name], splits[name], metric, self.test)
        for part in PARTS:  # Holm across the pipelines with a split, within each part
            named = [n for n in parts if parts[n][part].p is not None]
            for n, adjusted in zip(named, holm([parts[n][part].p for n in named]) if named else []):
                parts[n][part] = replace(parts[n][part], p_holm=adjusted)
        return Verdicts(baseline, versus, splits, parts, trained)

    @property
    def verdicts(self) -> Verdicts:
        self.run()
        assert self._verdicts is not None
        return self._verdicts

    @property
    def runs(self) -> dict[str, Run]:
        return self.run()._runs

    @property
    def results(self) -> dict[str, Results]:
        return self.run()._results

    @property
    def inputs(self) -> dict[str, Results]:
        """Each reranking pipeline's own input (the pipeline without its last stage), evaluated."""
        return self.run()._inputs

    # -- the tests ---------------------------------------------------------------------
    def versus_input(self, metric: str | None = None) -> dict[str, tuple[float, float]]:
        """``{pipeline: (metric change against its own input, Holm-adjusted p)}`` for every pipeline
        whose last stage reranks (the input is the pipeline without that stage)."""
        if metric not in (None, self.metrics[0]):
            names = [n for n in self.results if n in self._inputs and self.results[n].queries > 1]
            tests = [paired_test(self._inputs[n], self.results[n], metric, self.test) for n in names]
            return {n: (t.delta, p) for n, t, p in zip(names, tests, holm([t.p_value for t in tests]) if tests else [])}
        return {n: (t.delta, p) for n, (t, p) in self.verdicts.versus_input.items()}

    def hurt(self, metric: str | None = None) -> dict[str, tuple[float, float]]:
        """The pipelines whose last stage significantly lowered ``metric`` against its own input."""
        return {n: (d, p) for n, (d, p) in self.versus_input(metric).items() if d < 0 and p < self.alarm_level}

    def alarms(self, metric: str | None = None) -> list[str]:
        """One line per reranking stage that hurt, naming the dataset and the stage."""
        metric = metric or self.metrics[0]
        return [f"reranking hurt on {self.dataset.name}/{self.dataset.split}: {name} lowers {metric} by {-d:.4f} "
                f"against its own input {self.stages[name].stages[-2].name} (paired {self.test}, Holm p={p:.3g})"
                for name, (d, p) in self.hurt(metric).items()]

    def significance(self, metric: str | None = None) -> dict[str, tuple[float, float]]:
        """``{pipeline: (raw p, Holm-adjusted p)}`` against the baseline."""
        return {n: (t.p_value, p) for n, (t, p) in self.verdicts.baseline.items()}

    def contamination(self) -> dict[str, ContaminationSplit]:
        """``{pipeline: split}`` for every reranking pipeline holding a model with training judgments."""
        return dict(self.verdicts.splits)

    def memory(self) -> list[str]:
        """The pipelines whose lift shows only on queries whose relevant documents they saw in training."""
        return [n for n, parts in self.verdicts.parts.items() if lift_from_memory(parts, self.alarm_level)]

    def memory_alarms(self) -> list[str]:
        """One line per pipeline in :meth:`memory`, naming the dataset and the stage."""
        v = self.verdicts
        return [memory_message(f"{self.dataset.name}/{self.dataset.split}", name, v.parts[name], v.trained_on[name],
                               self.metrics[0]) for name in self.memory()]

    def statements(self) -> list[str]:
        """One line per group of pipelines with no clean query (their in-domain lift cannot be told from
        memory); pipelines whose models read the same judgments share a line."""
        names_by_line: dict[str, list[str]] = {}
        for name, split in self.verdicts.splits.items():
            if line := split.statement("\0"):
                names_by_line.setdefault(line, []).append(name)
        return [line.replace("\0", ", ".join(names)) for line, names in names_by_line.items()]

    def families(self) -> list[str]:
        """What each Holm correction in the table covers, in words."""
        v, lines = self.verdicts, []
        if v.baseline:
            lines.append(f"Δ and p vs {self.baseline}: paired {self.test}, Holm over the {len(v.baseline)} pipelines "
                         f"compared with {self.baseline}")
        if v.versus_input:
            lines.append(f"vs input: each reranker against its own input, Holm over the {len(v.versus_input)} "
                         f"reranking pipelines")
        if v.parts:
            lines.append(f"clean / contaminated: the same against-input test on each part, Holm over the "
                         f"{len(v.parts)} pipelines holding a trained model, per part")
        return lines

    # -- the table -----------------------------------------------------------------------
    def table(self, clock: str = "model") -> list[dict]:
        """One row per pipeline: metrics; against the baseline the difference, its 95% interval and
        the raw and Holm p; against its own input the change and Holm p (``hurt`` when it is a
        significant drop); for pipelines with a trained model the contamination split (flat keys:
        ``clean_queries``, ``clean_<metric>``, ``clean_delta_vs_input``, ``clean_p``, the same for
        ``contaminated_``, ``trained_on``, ``memory``); and cost: per-query latency on ``clock``
        (``"model"``: with empty caches, the default; ``"wall"``: as spent in this run), total
        seconds on both clocks, items scored, LLM tokens, and the ``device`` the models ran on. Computed
        once per clock."""
        if clock not in self._tables:
            self._tables[clock] = [self._row(name, clock) for name in self.results]
        return [dict(row) for row in self._tables[clock]]

    def _row(self, name: str, clock: str) -> dict:
        first, v, res, run = self.metrics[0], self.verdicts, self.results[name], self.runs[name]
        row: dict = {"name": name, **{m: round(res.means[m], 4) for m in self.metrics}, "queries": res.queries,
                     "empty_rankings": res.empty_rankings}
        if self.baseline is not None:
            test, adjusted = v.baseline.get(name, (None, None))
            row[f"delta_{first}"] = None if name == self.baseline else \
                round(res.means[first] - self.results[self.baseline].means[first], 4)
            row["ci95"] = _interval(test)
            row["p_raw"] = _round(test.p_value if test else None)
            row["p_holm"] = _round(adjusted)
        if name in v.versus_input:
            test, adjusted = v.versus_input[name]
            row[f"vs_input_{first}"] = round(test.delta, 4)
            row["vs_input_ci95"] = _interval(test)
            row["vs_input_p_holm"] = _round(adjusted)
            row["hurt"] = test.delta < 0 and adjusted < self.alarm_level
        if name in v.parts:
            row.update(self._split_columns(name))
        latencies = list(run.query_seconds(clock).values()) or [0.0]
        counters = add_counters(*(c.counters for c in run.costs))
        row.update({
            f"{clock}_median_ms": round(1000 * float(np.median(latencies)), 2),
            f"{clock}_p95_ms": round(1000 * float(np.quantile(latencies, 0.95)), 2),
            "model_seconds": round(run.total_seconds("model"), 2),
            "wall_seconds": round(run.total_seconds("wall"), 2),
            "items_scored": sum(c.items_scored for c in run.costs),
            **{k: int(v) for k, v in counters.items() if k in COST_COUNTERS},
            "device": "+".join(sorted({part for c in run.costs for part in c.device.split("+")})) or "cpu",
        })
        return row

    def _split_columns(self, name: str) -> dict:
        first, v = self.metrics[0], self.verdicts
        out: dict = {"trained_on": list(v.trained_on[name])}
        for part, lift in v.parts[name].items():
            out[f"{part}_queries"] = lift.queries
            out[f"{part}_{first}"] = _round(lift.value)
            out[f"{part}_delta_vs_input"] = _round(lift.delta)
            out[f"{part}_ci95"] = [round(x, 4) for x in lift.ci] if lift.ci else None
            out[f"{part}_p"] = _round(lift.p_holm if lift.p_holm is not None else lift.p)
            out[f"{part}_p_raw"] = _round(lift.p)
        out["memory"] = name in self.memory()
        statement = v.splits[name].statement(name)
        if statement:
            out["contamination_note"] = statement
        return out

    def columns(self, clock: str = "model") -> list[str]:
        """The columns :meth:`markdown` shows by default (those present in some row)."""
        first = self.metrics[0]
        wanted = ["name", *self.metrics, "queries", f"delta_{first}", "ci95", "p_raw", "p_holm", f"vs_input_{first}",
                  "vs_input_p_holm", "clean_queries", "clean_delta_vs_input", "clean_p", "contaminated_queries",
                  "contaminated_delta_vs_input", "contaminated_p", f"{clock}_median_ms", f"{clock}_p95_ms",
                  "items_scored", *COST_COUNTERS]
        rows = self.table(clock)
        present = {k for row in rows for k in row}
        if any(row.get("device", "cpu") != "cpu" for row in rows):  # where a model ran off the CPU, say so
            wanted.append("device")
        return [c for c in wanted if c in present]

    def markdown(self, columns: Sequence[str] | None = None, clock: str = "model") -> str:
        """The table as markdown; a reranking stage that hurt is marked **⚠ hurt**, a lift from
        memory **⚠ memory** in its name cell. Under the table: what each Holm correction covers,
        the empty-rankings convention and any pipeline with no clean query."""
        rows = self.table(clock)
        columns = list(columns or self.columns(clock))
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            cells = []
            for c in columns:
                value = _cell(row.get(c))
                if c == "name":
                    value += " **⚠ hurt**" if row.get("hurt") else ""
                    value += " **⚠ memory**" if row.get("memory") else ""
                cells.append(value)
            lines.append("| " + " | ".join(cells) + " |")
        empty = max((r["empty_rankings"] for r in rows), default=0)
        notes = [f"Judged queries with no ranking ({empty} at most here) count as 0 (trec_eval -c)."
                 if self.empty_rankings == "zero" else "Queries with no ranking are left out (as pytrec_eval)."]
        notes += self.families() + self.statements()
        return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes)

    def save(self, folder: str | Path) -> Path:
        """TREC runs + manifest.json; every file written atomically."""
        folder = Path(folder)
        for name, run in self.runs.items():
            run.write_trec(folder / "runs" / f"{safe_name(name)}.trec", tag=safe_name(name))
        manifest = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "dataset": {"name": self.dataset.name, "split": self.dataset.split,
                        "queries": len(self.dataset.queries), "documents": len(self.dataset.corpus),
                        "corpus_fingerprint": self.dataset.fingerprint},
            "versions": versions(),
            "metrics": list(self.metrics),
            "baseline": self.baseline,
            "significance": self.families(),
            "pipelines": {name: {"run": f"runs/{safe_name(name)}.trec", "stages": describe(stage),
                                 "trained_on": [r.as_dict() for r in provenance(stage, self.trained_on)]}
                          for name, stage in self.stages.items()},
            "contamination": {name: {"clean": list(split.clean), "contaminated": list(split.contaminated)}
                              for name, split in self.contamination().items()},
            "table": self.table(),
        }
        atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")
        return folder


class RerankingHurt(UserWarning):
    """A reranking stage scored significantly below its own input (Experiment's alarm)."""


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def _interval(test: PairedTest | None) -> list[float] | None:
    if test is None or np.isnan(test.ci_low):
        return None
    return [round(test.ci_low, 4), round(test.ci_high, 4)]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(x, float) for x in value):
        return f"[{value[0]:+.4f}, {value[1]:+.4f}]"
    return str(value)
