"""zELO end to end on the toy corpus with real models: judges, resumable judging, a fitted student."""
import json

import pytest

from rerank_lab import load_dataset
from rerank_lab.llm.packaged import SMALL_GGUF
from rerank_lab.rerankers.maxsim import ZeroShotMaxSim
from rerank_lab.rerankers.pairwise import Pairwise
from rerank_lab.train.zelo.adapt import AdaptConfig, adapt, pseudo_queries, recorded_minutes
from rerank_lab.train.zelo.judges import EnsembleJudge, LLMJudge, RerankerJudge, judge_query
from rerank_lab.train.zelo.sampling import cycle_plan
from rerank_lab.train.zelo.student import StudentConfig

DOCS = ["Scurvy is caused by a lack of vitamin C.", "Paris is the capital of France.",
        "Vitamin C deficiency leads to scurvy: bleeding gums and fatigue.", "Dogs bark loudly at night."]


def test_judges_agree_on_the_obvious_and_judging_resumes_from_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    judge = EnsembleJudge((LLMJudge(Pairwise(model=SMALL_GGUF, backend="llamacpp", cache=False)),
                           RerankerJudge(ZeroShotMaxSim())))
    pairs = cycle_plan(len(DOCS), k=2, seed=0)
    votes, counters = judge_query(judge, "what causes scurvy?", DOCS, pairs)
    assert counters["judged"] == len(pairs) and counters["cache_hits"] == 0
    p = {(i, j): v for i, j, v in votes}
    if (0, 1) in p:
        assert p[(0, 1)] > 0.5  # the scurvy document beats the Paris one
    asked_seconds = counters["seconds"]
    again, counters = judge_query(judge, "what causes scurvy?", DOCS, pairs)
    assert again == votes and counters["judged"] == 0 and counters["cache_hits"] == len(pairs)
    # a resumed run reports the judge time the votes cost when asked, not the lookups' near-zero
    assert asked_seconds > 0 and counters["seconds"] == pytest.approx(asked_seconds)


def test_label_free_adaptation_runs_end_to_end_on_the_toy_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache"))
    toy = load_dataset("toy")
    assert len(pseudo_queries(toy, 3, "title")) == 3
    config = AdaptConfig(queries=3, candidates=4, k=2, generator="title",
                         student=StudentConfig(steps=2, groups_per_step=2, group_size=4, max_length=64))
    from rerank_lab.components.models import MINILM

    record = adapt(toy, RerankerJudge(ZeroShotMaxSim()), MINILM, tmp_path / "student", config, progress=False)
    assert record["adaptation"]["judging"]["judged"] == 3 * len(cycle_plan(4, 2))
    assert len(record["curve"]) == 2 and (tmp_path / "student" / "config.json").exists()
    saved = json.loads((tmp_path / "student" / "zelo.json").read_text())
    # a reranker's votes come from one score per document: consistent, so the fit agrees with every one
    assert saved["adaptation"]["corpus"] == "toy" and saved["adaptation"]["judging"]["agreement"] == 1.0
    assert saved["adaptation"]["judging"]["intransitive_triples"] == 0
    from rerank_lab.rerankers.cross_encoder import cross_encoder

    scores = cross_encoder(str(tmp_path / "student"), max_length=64).score("forgot my password", DOCS)
    assert len(scores) == len(DOCS)


def test_recorded_minutes_count_compute_once_not_cache_reads_nor_a_shared_stage_per_row(tmp_path):
    from rerank_lab import Run, StageCost

    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "training.json").write_text(json.dumps({"minutes": 2.5}))
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "zelo.json").write_text(json.dumps(
        {"adaptation": {"judging": {"judge_seconds": 90.0}}, "student": {"minutes": 1.0}}))
    # a warm rerun: the shared hybrid stage (60 s of compute) and two cross-encoders (30 s and 90 s of
    # compute) each took 1 s of wall time reading caches
    hybrid = StageCost("hybrid%100", 1.0, 0, model_seconds=60.0)
    runs = {"hybrid": Run({}, "hybrid", [hybrid]),
            "hybrid>>a": Run({}, "a", [hybrid, StageCost("a", 1.0, 100, model_seconds=30.0)]),
            "hybrid>>b": Run({}, "b", [hybrid, StageCost("b", 1.0, 100, model_seconds=90.0)])}
    minutes = recorded_minutes(tmp_path / "source", tmp_path / "student", runs)
    assert minutes == {"source_training": 2.5, "judge_calls": 1.5, "student_training": 1.0, "evaluation": 3.0,
                       "total": 8.0}


def test_judge_seconds_are_the_judges_compute_not_its_cache_reads(tmp_path, monkeypatch):
    """Votes asked of a judge whose own token cache is warm still record what they cost cold."""
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    from rerank_lab.components.stores import KeyValueStore

    pairs = cycle_plan(len(DOCS), k=2, seed=0)
    cold_judge = RerankerJudge(ZeroShotMaxSim())
    _, cold = judge_query(cold_judge, "what causes scurvy?", DOCS, pairs, KeyValueStore(tmp_path / "votes-a.sqlite"))
    encoded = cold_judge.counters["docs_encoded"]
    cold_judge.reranker.flush()  # as a reranking stage does when it ends
    warm_judge = RerankerJudge(ZeroShotMaxSim())  # its token store now holds every document
    _, warm = judge_query(warm_judge, "what causes scurvy?", DOCS, pairs, KeyValueStore(tmp_path / "votes-b.sqlite"))
    assert encoded == len(DOCS) and warm_judge.counters.get("docs_encoded", 0) == 0
    assert warm["judged"] == cold["judged"] == len(pairs) and warm["cache_hits"] == 0
    # the encodings the warm judge read back count at the seconds recorded when they ran
    saved = warm_judge.counters["saved_seconds"]
    assert saved > 0 and warm["seconds"] >= saved


def test_a_bad_generator_is_refused():
    with pytest.raises(ValueError, match="generator"):
        pseudo_queries(load_dataset("toy"), 2, "magic")
