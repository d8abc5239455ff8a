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
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "training.json").write_text(json.dumps({"minutes": 2.5}))
    minutes = recorded_minutes(tmp_path / "source", tmp_path / "student", [{"wall_seconds": 30.0}])
    assert minutes["source_training"] == 2.5 and minutes["evaluation"] == 0.5
    assert minutes["total"] == pytest.approx(sum(v for k, v in minutes.items() if k != "total"), abs=0.11)
    saved = json.loads((tmp_path / "student" / "zelo.json").read_text())
    assert saved["adaptation"]["corpus"] == "toy" and 0 <= saved["adaptation"]["judging"]["agreement"] <= 1
    from rerank_lab.rerankers.cross_encoder import cross_encoder

    scores = cross_encoder(str(tmp_path / "student"), max_length=64).score("forgot my password", DOCS)
    assert len(scores) == len(DOCS)


def test_a_bad_generator_is_refused():
    with pytest.raises(ValueError, match="generator"):
        pseudo_queries(load_dataset("toy"), 2, "magic")
