"""Relevance or memory? Split test queries by what a model saw in training.

A test query is **contaminated** for a model when one of its relevant documents is a positive in
judgments the model trained or was tuned on; the others are **clean**. Corpora like SciFact and
NFCorpus share documents between their train and test judgments, so a reranker fine-tuned on
train can lift test by ranking the documents it learnt to like, without reading the query. A lift
that shows on the contaminated part and not on the clean part is that memory; only the clean part
(or a dataset the model never saw) measures relevance. The same concern motivates decontaminated
evaluation in LLM benchmarks (e.g. Sainz et al., "NLP Evaluation in trouble", EMNLP Findings 2023).

Usage::

    split = contamination(dataset, my_training_qrels)        # any judgments you fine-tuned on
    split = contamination(dataset, parse_pipeline("hybrid>>ce"))   # what the pipeline's models recorded
    split.clean, split.contaminated, split.seen["q1"]
    parts = lift_by_part(results, input_results, split)     # {"clean": PartLift, "contaminated": PartLift}
    split_rows(experiment)                                   # the relevance-or-memory table of a run Experiment
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..components.provenance import training_positives
from ..core.data import Dataset
from ..core.provenance import TrainingData, provenance
from .evaluate import Results, paired_test

PARTS = ("clean", "contaminated")


@dataclass(frozen=True)
class ContaminationSplit:
    """The judged queries of ``dataset`` (its ``split``, usually test) split by training positives.
    ``seen``: for each contaminated query, its relevant documents that were training positives.
    ``trained_on``: every record considered (records of other datasets name other corpora and
    contaminate nothing here)."""

    dataset: str
    clean: tuple[str, ...]
    contaminated: tuple[str, ...]
    seen: Mapping[str, tuple[str, ...]] = field(repr=False)
    trained_on: tuple[str, ...] = ()
    split: str = "test"

    def part(self, name: str) -> tuple[str, ...]:
        if name not in PARTS:
            raise ValueError(f"unknown part {name!r}: use 'clean' or 'contaminated'")
        return self.clean if name == "clean" else self.contaminated

    def statement(self, pipeline: str = "the model") -> str | None:
        """One line when no clean query is left (the in-domain lift cannot be told from memory)."""
        if self.clean or not self.contaminated:
            return None
        here = [t for t in self.trained_on if t.lower().startswith(f"{self.dataset.lower()}:")] or self.trained_on
        return (f"{self.dataset}: every {self.split} query is contaminated for {pipeline} (a relevant document of each "
                f"was a positive in judgments the model trained or was tuned on: {', '.join(here)}): the in-domain "
                f"lift cannot be told from memory here; judge it on another dataset")


def contamination(dataset: Dataset, training: object) -> ContaminationSplit:
    """Split ``dataset``'s judged queries by ``training``: a qrels mapping (``{qid: {doc: rel}}``,
    judgments on the same corpus, e.g. your fine-tuning data), ``"dataset:split"`` strings or
    :class:`TrainingData` records, or a stage / reranker (its models' recorded provenance)."""
    if isinstance(training, Mapping):
        positives = {d: ["given qrels"] for judged in training.values() for d, r in dict(judged).items() if r >= 1}
        labels: tuple[str, ...] = ("given qrels",)
    else:
        records = _records(training)
        positives = training_positives(records, dataset.name)
        labels = tuple(r.label for r in records)
    clean, contaminated, seen = [], [], {}
    for qid in sorted(dataset.qrels):
        hits = tuple(sorted(d for d, r in dataset.qrels[qid].items() if r >= 1 and d in positives))
        if hits:
            contaminated.append(qid)
            seen[qid] = hits
        else:
            clean.append(qid)
    return ContaminationSplit(dataset.name, tuple(clean), tuple(contaminated), seen, tuple(dict.fromkeys(labels)),
                              dataset.split)


def _records(training: object) -> tuple[TrainingData, ...]:
    if isinstance(training, (str, TrainingData)):
        return (TrainingData.coerce(training),)
    if hasattr(training, "children") or hasattr(training, "training_data") or hasattr(training, "trained_on"):
        return provenance(training)
    if isinstance(training, Iterable):
        return tuple(TrainingData.coerce(v) for v in training)
    raise TypeError(f"cannot read training judgments from {training!r}: give a qrels mapping, 'dataset:split' "
                    f"strings, TrainingData records or a pipeline")


@dataclass(frozen=True)
class PartLift:
    """One part's numbers: the pipeline's metric there, its input's, the change and the paired
    test of that change (``p`` raw; ``p_holm`` corrected across the family the caller names)."""

    part: str
    queries: int
    value: float | None = None
    input_value: float | None = None
    delta: float | None = None
    p: float | None = None
    p_holm: float | None = None
    ci: tuple[float, float] | None = None

    def significant(self, level: float = 0.05) -> bool:
        p = self.p_holm if self.p_holm is not None else self.p
        return p is not None and p < level


def lift_by_part(results: Results, inputs: Results, split: ContaminationSplit, metric: str = "ndcg@10",
                 method: str = "t-test") -> dict[str, PartLift]:
    """The pipeline against its own input on the clean and on the contaminated queries."""
    out = {}
    for part in PARTS:
        qids = split.part(part)
        if not qids:
            out[part] = PartLift(part, 0)
            continue
        mine, theirs = results.restrict(qids), inputs.restrict(qids)
        if len(qids) < 2:
            value, base = mine.means[metric], theirs.means[metric]
            out[part] = PartLift(part, len(qids), value, base, value - base)
            continue
        test = paired_test(theirs, mine, metric, method)
        out[part] = PartLift(part, len(qids), test.mean_b, test.mean_a, test.delta, test.p_value, None,
                             (test.ci_low, test.ci_high))
    return out


def lift_from_memory(parts: Mapping[str, PartLift], level: float = 0.05) -> bool:
    """The contaminated part lifts significantly and the clean part (which has queries) does not."""
    clean, dirty = parts["clean"], parts["contaminated"]
    return (dirty.delta is not None and dirty.delta > 0 and dirty.significant(level) and clean.queries > 0
            and not (clean.delta is not None and clean.delta > 0 and clean.significant(level)))


class LiftFromMemory(UserWarning):
    """A reranker lifts only the test queries whose relevant documents it saw in training."""


def memory_message(dataset: str, pipeline: str, parts: Mapping[str, PartLift], trained_on: Iterable[str],
                   metric: str = "ndcg@10") -> str:
    clean, dirty = parts["clean"], parts["contaminated"]
    clean_p = clean.p_holm if clean.p_holm is not None else clean.p
    dirty_p = dirty.p_holm if dirty.p_holm is not None else dirty.p
    return (f"lift comes from documents seen in training on {dataset}: {pipeline} lifts {metric} by {dirty.delta:+.4f} "
            f"on the {dirty.queries} queries whose relevant documents were training positives (p={_p(dirty_p)}) but "
            f"{_delta(clean.delta)} on the {clean.queries} clean queries (p={_p(clean_p)}); trained on "
            f"{', '.join(trained_on)}")


def _p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3g}"


def _delta(d: float | None) -> str:
    return "n/a" if d is None else f"{d:+.4f}"


def split_rows(experiment, metric: str | None = None) -> list[dict]:
    """One row per pipeline of a run :class:`~rerank_lab.analysis.experiment.Experiment` that holds a
    trained model: what it trained on, and on the clean and the contaminated queries the change
    against its own input with its 95% interval and Holm p, then the reading in words."""
    from .significance import from_row

    metric = metric or experiment.metrics[0]
    out = []
    for row in experiment.table():
        if "clean_queries" not in row:
            continue
        line = {"pipeline": row["name"], "trained on": ", ".join(row["trained_on"])}
        parts = {}
        for part in PARTS:
            parts[part] = from_row(row, metric, against=part)
            line.update({f"{part} queries": row[f"{part}_queries"], f"{part} {metric}": row.get(f"{part}_{metric}"),
                         f"{part} Δ vs input": row.get(f"{part}_delta_vs_input"), f"{part} 95% CI": row.get(f"{part}_ci95"),
                         f"{part} p (Holm)": row.get(f"{part}_p")})
        clean = parts["clean"]
        if row.get("contamination_note"):
            reading = "every query contaminated: relevance cannot be told from memory here"
        elif row.get("memory"):
            reading = "⚠ memory: lifts only the contaminated queries"
        elif clean is None:
            reading = "too few clean queries to test"
        else:
            reading = f"clean queries: {clean.verdict()}"
        line["reading"] = reading
        out.append(line)
    return out


__all__ = ["ContaminationSplit", "LiftFromMemory", "PARTS", "PartLift", "contamination", "lift_by_part",
           "lift_from_memory", "memory_message", "split_rows"]
