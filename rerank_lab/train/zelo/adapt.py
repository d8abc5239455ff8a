"""Label-free adaptation to a new corpus, and the leave-one-dataset-out protocol that tests it.

Given only a corpus (no queries, no judgments): write a pseudo-query for each of a sample of
documents, retrieve hybrid candidates for it, let a judge vote on sparse pairs of them (cycle
plan), fit Thurstone scores per pseudo-query, and train a cross-encoder student on them (zELO,
arXiv:2509.12541). Pseudo-queries come from the packaged LLM (InPars-style prompting; Bonifacio
et al., 2022: an instruction-tuned model asked for the search query a document answers) or, as a
free baseline, from document titles (keyword-like, which is how many BEIR queries read).

The only honest test of adaptation here is to leave a dataset out: train on one dataset's
labels, adapt to the other's corpus without its queries or labels, evaluate on its test split
against hybrid and against the unadapted model, then swap the roles. Nothing is tuned on test;
the interpolation weight and depth come from the source dataset's tuning queries.

Usage::

    python -m rerank_lab.train.zelo --corpus nfcorpus --budget 1200 --start <a cross-encoder folder>
    python -m rerank_lab.train.zelo --leave-one-out scifact nfcorpus --queries 60
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

from ...components.stores import KeyValueStore, cache_dir
from ...core.data import Dataset
from ...core.files import atomic_write_text
from ...core.provenance import TrainingData
from ...core.run import Run
from .fit import fit_scores
from .judges import Judge, judge_query
from .sampling import cycle_plan
from .student import ScoredGroup, StudentConfig, train_student

GENERATORS = ("llm", "title")


@dataclass(frozen=True)
class AdaptConfig:
    queries: int = 60                 # pseudo-queries (one per sampled document)
    candidates: int = 10              # hybrid top n judged per pseudo-query
    k: int = 4                        # comparisons per document (cycle plan): n*k/2 per query
    generator: str = "llm"
    generator_model: str | None = None
    document_words: int = 120
    seed: int = 0
    student: StudentConfig = field(default_factory=StudentConfig)

    @property
    def comparisons(self) -> int:
        """The judge-call budget: comparisons in all (each asks both orders)."""
        return self.queries * len(cycle_plan(self.candidates, self.k))


def pseudo_queries(dataset: Dataset, n: int, generator: str = "llm", model: str | None = None, words: int = 120,
                   seed: int = 0) -> dict[str, tuple[str, str]]:
    """``{pseudo query id: (query text, source document id)}`` for up to ``n`` sampled documents
    (:func:`rerank_lab.train.pseudo.pseudo_queries`: LLM generations cleaned of code and markdown,
    cached through the shared LLM call cache; rejected ones are left out)."""
    from ..pseudo import pseudo_queries as write

    if generator not in GENERATORS:
        raise ValueError(f"unknown generator {generator!r}: use one of {', '.join(GENERATORS)}")
    return {p.query_id: (p.text, p.source) for p in write(dataset, n, generator, seed, model, words)}


def scored_groups(dataset: Dataset, judge: Judge, config: AdaptConfig, first_stage=None,
                  progress: bool = True) -> tuple[list[ScoredGroup], dict]:
    """Pseudo-queries -> hybrid candidates -> judged sparse pairs -> Thurstone scores, per query."""
    from ...core.progress import progress_bar

    from ...core.data import Query
    from ...first_stage import hybrid

    t0 = time.perf_counter()
    pseudo = pseudo_queries(dataset, config.queries, config.generator, config.generator_model, config.document_words,
                            config.seed)
    queries = {q: Query(q, text) for q, (text, _) in pseudo.items()}
    candidates = ((first_stage or hybrid()) % config.candidates).transform(queries, dataset.corpus)
    plan = cycle_plan(config.candidates, config.k, seed=config.seed)
    store = KeyValueStore.open("zelo")
    groups, stats = [], {"judged": 0, "cache_hits": 0, "judge_seconds": 0.0, "agreement": [],
                         "intransitive_triples": 0, "pseudo_queries": len(queries)}
    for qid in progress_bar(list(candidates.rankings), desc="judging pairs", disable=not progress):
        doc_ids = candidates.doc_ids(qid)
        if len(doc_ids) < 2:
            continue
        docs = [dataset.corpus[d].full_text for d in doc_ids]
        pairs = [(i, j) for i, j in plan if i < len(docs) and j < len(docs)]
        votes, counters = judge_query(judge, queries[qid].text, docs, pairs, store)
        fit = fit_scores(len(docs), votes, "thurstone")
        groups.append(ScoredGroup(queries[qid].text, tuple(docs), tuple(float(s) for s in fit.scores)))
        stats["judged"] += counters["judged"]
        stats["cache_hits"] += counters["cache_hits"]
        stats["judge_seconds"] += counters["seconds"]
        stats["agreement"].append(fit.agreement)
        stats["intransitive_triples"] += fit.intransitive_triples
    stats["agreement"] = round(sum(stats["agreement"]) / max(len(stats["agreement"]), 1), 4)
    stats["minutes"] = round((time.perf_counter() - t0) / 60, 2)
    stats["examples"] = {q: text for q, (text, _) in list(pseudo.items())[:5]}
    return groups, stats


def adapt(dataset: Dataset, judge: Judge, start: str, output: str | Path, config: AdaptConfig = AdaptConfig(),
          progress: bool = True) -> dict:
    """Label-free adaptation of the cross-encoder at ``start`` to ``dataset``'s corpus; returns the record
    (also written beside the student as ``zelo.json``)."""
    groups, stats = scored_groups(dataset, judge, config, progress=progress)
    label_free = TrainingData(dataset.name, dataset.split, "train", labels=False)  # its corpus, no judgments
    record = train_student(groups, start=start, output=output, config=config.student, progress=progress,
                           trained_on=[label_free])
    record = {"adaptation": {"corpus": dataset.name, "judge": judge.identity(), "config": asdict(config),
                             "judging": stats}, "student": {k: v for k, v in record.items() if k != "curve"},
              "curve": record["curve"]}
    atomic_write_text(Path(output) / "zelo.json", json.dumps(record, indent=1, default=str))
    return record


def default_judge(source_model: str | None = None, llm: str | None = None, words: int = 60,
                  device: str = "auto") -> Judge:
    """The label-free judge the lab uses: the pairwise LLM (both orders) averaged with zero-shot
    MaxSim and, when given, the source-trained cross-encoder (none of them saw the target's labels);
    every model on ``device``."""
    from ...llm.defaults import default_model
    from ...rerankers.cross_encoder import cross_encoder
    from ...rerankers.maxsim import ZeroShotMaxSim
    from ...rerankers.pairwise import Pairwise
    from .judges import EnsembleJudge, LLMJudge, RerankerJudge

    members = [LLMJudge(Pairwise(model=llm or default_model(), max_passage_words=words, device=device)),
               RerankerJudge(ZeroShotMaxSim(device=device), temperature=1.0)]
    if source_model:
        members.append(RerankerJudge(cross_encoder(source_model, device=device), temperature=1.0))
    return EnsembleJudge(tuple(members))


def leave_one_out(source: str, target: str, folder: str | Path | None = None, config: AdaptConfig = AdaptConfig(),
                  source_steps: int = 300, depth: int = 20, llm: str | None = None, progress: bool = True) -> dict:
    """Train a cross-encoder on ``source``'s train labels only, adapt it to ``target``'s corpus
    label-free, and evaluate hybrid / source-only / adapted on ``target`` test (never tuned there:
    alpha comes from ``source``'s tuning queries at ``depth``)."""
    from ...analysis.experiment import Experiment
    from ...core.interpolate import Interpolate
    from ...data import load_dataset
    from ...first_stage import hybrid
    from ...rerankers.cross_encoder import cross_encoder
    from ..cross_encoder import TrainConfig, train_cross_encoder
    from ..tune import tune, tuning_sets

    folder = Path(folder or cache_dir("zelo") / f"loo-{source}-to-{target}")
    started = time.perf_counter()
    source_dir = folder / f"{source}-only"
    if not (source_dir / "config.json").exists():
        train_cross_encoder(TrainConfig(output=str(source_dir), datasets=(source,), max_steps=source_steps,
                                        max_minutes=None, max_length=128, device=config.student.device),
                            progress=progress)
    meta = json.loads((source_dir / "training.json").read_text())
    tuned = tune(lambda s: cross_encoder(str(source_dir), max_length=256, name=f"{source}-only"), [{}],
                 tuning_sets({source: meta["tuning"][source]}), depths=(depth,), progress=progress)
    alpha = tuned["chosen"]["alpha"]
    student_dir = folder / f"{source}-only+zelo-{target}"
    target_corpus = load_dataset(target, split="test")  # adaptation reads its corpus only
    record = adapt(target_corpus, default_judge(str(source_dir), llm, device=config.student.device), str(source_dir),
                   student_dir, config, progress)
    test = load_dataset(target, split="test")
    first = hybrid() % 100
    mix = lambda path, label: Interpolate(cross_encoder(str(path), max_length=256, name=label), alpha=alpha,  # noqa: E731
                                          rerank_depth=depth, label=label)
    exp = Experiment(test, {"hybrid": first, f"hybrid>>{source}-only": first >> mix(source_dir, f"{source}-only"),
                            f"hybrid>>{source}-only+zelo": first >> mix(student_dir, f"{source}-only+zelo")},
                     baseline="hybrid", metrics=["ndcg@10", "judged@10"], progress=progress).run()
    result = {"source": source, "target": target, "alpha": alpha, "rerank_depth": depth,
              "table": exp.table(), "judge_comparisons": record["adaptation"]["judging"]["judged"]
              + record["adaptation"]["judging"]["cache_hits"],
              "judging": record["adaptation"]["judging"],
              "minutes": {**recorded_minutes(source_dir, student_dir, exp.runs),
                          "wall_this_run": round((time.perf_counter() - started) / 60, 1)}}
    atomic_write_text(folder / "leave_one_out.json", json.dumps(result, indent=1, default=str))
    return result


def recorded_minutes(source_dir: str | Path, student_dir: str | Path, runs: Mapping[str, Run]) -> dict:
    """What a leave-one-out run costs in compute, from what each part recorded when it ran (the
    source model's ``training.json``, the student's ``zelo.json``) and the evaluation runs' model
    seconds (compute with empty caches, so a warm rerun reports what a cold one does), each stage
    counted once however many pipelines share it (the hybrid first stage)."""
    source = json.loads((Path(source_dir) / "training.json").read_text())
    adapted = json.loads((Path(student_dir) / "zelo.json").read_text())
    parts = {"source_training": float(source.get("minutes") or 0.0),
             "judge_calls": float(adapted["adaptation"]["judging"]["judge_seconds"]) / 60,
             "student_training": float(adapted["student"].get("minutes") or 0.0),
             "evaluation": evaluation_seconds(runs) / 60}
    return {**{k: round(v, 1) for k, v in parts.items()}, "total": round(sum(parts.values()), 1)}


def evaluation_seconds(runs: Mapping[str, Run]) -> float:
    """Model seconds of every distinct stage of ``runs``: a stage is its place in a pipeline (the
    stages before it and itself), so a prefix shared by several pipelines counts once."""
    seconds: dict[tuple[str, ...], float] = {}
    for run in runs.values():
        prefix: tuple[str, ...] = ()
        for cost in run.costs:
            prefix += (cost.stage,)
            seconds[prefix] = float(cost.model_seconds or 0.0)
    return sum(seconds.values())
