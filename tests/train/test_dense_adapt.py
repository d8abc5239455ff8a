"""GPL-style dense adaptation, end to end on the real MiniLM and a real corpus (the toy help-desk one):
label-free triples, a MarginMSE step that moves the student towards the teacher, and a saved folder
that the dense first stage loads and the contamination split treats as reading no judgment."""
import json

import numpy as np
import pytest

from rerank_lab import Dense, load_dataset
from rerank_lab.analysis.contamination import contamination
from rerank_lab.train.dense import (AdaptConfig, Triple, adapt_dense, compare, main, margin_mse, mine_triples, summary,
                                   train_triples)

SMALL = dict(queries=12, roundtrip_k=5, depth=8, skip_top=0, batch_size=4, max_length=64, device="cpu")


@pytest.fixture(scope="module")
def toy():
    return load_dataset("toy")


def test_triples_come_from_the_corpus_with_teacher_margins(toy):
    triples, stats = mine_triples(toy, AdaptConfig(**SMALL), progress=False)
    titles = {doc.title for doc in toy.corpus.values()}
    bodies = {doc.text for doc in toy.corpus.values()}
    assert triples and stats["written"] == 12 and stats["triples"] == len(triples) <= stats["kept"]
    for t in triples:
        assert t.query in titles and t.positive in bodies and t.negative in bodies and t.positive != t.negative
    # zero-shot MaxSim mostly prefers a title's own body to a hard negative: the margins carry signal
    assert np.mean([t.margin > 0 for t in triples]) > 0.5 and stats["teacher_prefers_source"] > 0.5


def test_margin_mse_is_zero_only_when_the_margins_agree():
    import torch

    assert float(margin_mse(torch.tensor([1.0, -2.0]), torch.tensor([1.0, -2.0]))) == 0.0
    assert float(margin_mse(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]))) == pytest.approx(0.5)


def test_training_moves_the_student_margin_towards_the_teacher(toy):
    triples, _ = mine_triples(toy, AdaptConfig(**SMALL), progress=False)
    # a teacher that strongly prefers the positive: the student's margin must grow to meet it
    strong = [Triple(t.query, t.positive, t.negative, 3.0) for t in triples[:4]]
    _, curve, _ = train_triples(strong, AdaptConfig(**{**SMALL, "steps": 6, "lr": 5e-4, "warmup": 0.0}), progress=False)
    assert len(curve) == 6 and curve[-1] < curve[0]
    with pytest.raises(ValueError, match="no training triples"):
        train_triples([], AdaptConfig(**SMALL), progress=False)


def test_the_adapted_folder_loads_as_a_dense_stage_and_reads_no_judgment(toy, tmp_path):
    out = tmp_path / "gpl-toy"
    result = adapt_dense(toy, AdaptConfig(**{**SMALL, "steps": 2}), out, progress=False)
    assert result.steps == 2 and (out / "modules.json").exists() and not list(tmp_path.glob("*.tmp*"))
    meta = json.loads((out / "training.json").read_text())
    assert meta["dataset"] == "toy" and len(meta["curve"]) == 2 and meta["pseudo"]["triples"] == result.triples
    adapted, original = Dense(str(out), device="cpu"), Dense(device="cpu")
    assert adapted.training_data()[0].labels is False
    run = adapted(toy)
    assert set(run.rankings) == set(toy.queries)
    text = ["Reset a forgotten password"]
    assert not np.allclose(adapted.encode(text), original.encode(text), atol=1e-4)  # the weights moved
    split = contamination(toy, adapted)
    assert split.contaminated == () and len(split.clean) == len(toy.qrels)  # label-free: every query clean
    rows = compare(toy, out, device="cpu")
    assert set(rows) == {"dense", "hybrid"}
    for row in rows.values():
        assert row["queries"] == len(toy.queries)
        assert row["delta"] == pytest.approx(row["adapted"] - row["original"], abs=2e-4)
        assert row["p_holm"] >= (row["p_raw"] or 0)
    table = summary([{"dataset": "toy", "comparisons": {"test": rows}}])
    assert table.count("\n| toy | test |") == 2 and f"{rows['dense']['adapted']:.4f}" in table


def test_the_command_names_what_is_missing(capsys):
    with pytest.raises(SystemExit):
        main(["--steps", "3"])
    assert "give the target DATASET and --out FOLDER" in capsys.readouterr().err


def test_bad_settings_fail_naming_the_setting():
    with pytest.raises(ValueError, match="pseudo-query kind"):
        AdaptConfig(kind="titles")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        AdaptConfig(steps=0)
