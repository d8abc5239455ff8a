"""Training the lab cross-encoder: the loss falls, the recipe checkpoints, resumes and exports a
reranker with its provenance, a prepared bundle trains like mining, and a checkpoint holding
anything but tensors and plain values is refused (the cache folder may be shared)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rerank_lab.components.models import MINILM
from rerank_lab.data import load_dataset
from rerank_lab.first_stage import BM25
from rerank_lab.rerankers.cross_encoder import CrossEncoderScorer

QUERY = "how do I reset my password"
DOCS = ["To reset your password, open settings and choose 'forgot password'.", "Paris is the capital of France.",
        "", "Password resets need the email address of the account " * 3]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache"))


def test_two_training_steps_lower_the_loss(tmp_path, monkeypatch):
    import torch

    from rerank_lab.train.cross_encoder import TrainConfig, batch_loss, new_model, train_cross_encoder
    from rerank_lab.train.negatives import mine_groups

    config = TrainConfig(output=str(tmp_path / "ce"), datasets=("toy",), teacher="ensemble", n_negatives=3,
                         max_length=64, groups_per_step=2, lr=1e-4, max_steps=2, checkpoint_every=1,
                         max_minutes=None, bf16=False)
    toy = load_dataset("toy")
    groups = mine_groups(toy, BM25(), n_negatives=3, skip_top=0, allow_test=True)[:2]
    texts = {"toy": {d: doc.full_text for d, doc in toy.corpus.items()}}
    model, tokenizer = new_model(MINILM, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    losses = []
    for _ in range(3):
        loss, _, _ = batch_loss(model, tokenizer, groups, texts, None, config)
        losses.append(float(loss.detach()))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[2] < losses[0]

    # a query longer than max_length (an inverse-cloze sentence) is cut as the reranker cuts it, not fatal
    long_query = replace(groups[0], query=" ".join(["password"] * 200))
    loss, pairs, at_max_length = batch_loss(model, tokenizer, [long_query], texts, None, config)
    assert np.isfinite(float(loss.detach())) and at_max_length == pairs == 4

    # the full recipe runs, checkpoints, resumes and exports a loadable reranker
    result = train_cross_encoder(config, progress=False)
    assert result.steps == 2 and len(result.curve) == 2
    resumed = train_cross_encoder(TrainConfig(**{**config.__dict__, "max_steps": 3}), progress=False)
    assert resumed.steps == 3 and resumed.curve[:2] == result.curve
    ce = CrossEncoderScorer(config.output, max_length=64)
    assert len(ce.score(QUERY, DOCS)) == len(DOCS)

    # what it learned from travels with the weights: saved, loaded back, found in a pipeline
    from rerank_lab.components.provenance import qrels_fingerprint, read_provenance
    from rerank_lab.core.provenance import provenance
    from rerank_lab.rerankers.cross_encoder import cross_encoder

    trained_ids = sorted({g.query_id for g in mine_groups(toy, BM25(), n_negatives=3, skip_top=0, allow_test=True)})
    (record,) = read_provenance(config.output)
    assert (record.dataset, record.split, record.role, record.labels) == ("toy", "test", "train", True)
    assert list(record.query_ids) == trained_ids
    assert record.qrels_sha256 == qrels_fingerprint(toy.qrels, trained_ids)
    assert provenance(BM25() % 5 >> cross_encoder(config.output, max_length=64)) == (record,)
    stated = cross_encoder(config.output, max_length=64, trained_on="msmarco:train")
    assert [r.label for r in provenance(stated)] == ["toy:test", "msmarco:train"]


def test_training_data_bundle_trains_like_mining_and_names_a_mismatch(tmp_path, monkeypatch):
    from dataclasses import asdict, replace

    from rerank_lab.train.cross_encoder import (TrainConfig, build_groups, load_training_data, memoized,
                                                save_training_data, train_cross_encoder)

    config = TrainConfig(output=str(tmp_path / "mined"), datasets=("toy",), teacher="ensemble", n_negatives=3,
                         max_length=64, groups_per_step=2, max_steps=2, checkpoint_every=100, max_minutes=None,
                         bf16=False, device="cpu")
    bundle = save_training_data(config, tmp_path / "data.json.gz")
    groups, texts, tuning, _, trained_on = load_training_data(bundle, config)
    mined, mined_texts, mined_tuning, _ = build_groups(config)
    assert [asdict(g) for g in groups] == [asdict(g) for g in mined] and tuning == mined_tuning
    assert all(texts[g.dataset][d] == mined_texts[g.dataset][d] for g in groups for d in [g.positive, *g.negatives])
    with pytest.raises(ValueError, match="n_negatives.*--prepare"):
        load_training_data(bundle, replace(config, n_negatives=5))

    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache-a"))  # no checkpoint to resume from
    from_mining = train_cross_encoder(config, progress=False)
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache-b"))
    from_bundle = train_cross_encoder(replace(config, output=str(tmp_path / "bundled")), progress=False, data=bundle)
    assert from_bundle.steps == 2 and np.allclose(from_bundle.curve, from_mining.curve, atol=1e-5)
    from rerank_lab.components.provenance import read_provenance

    assert read_provenance(tmp_path / "bundled") == read_provenance(tmp_path / "mined") == tuple(trained_on)

    calls = []
    teacher = memoized(lambda group, docs: calls.append(group.query_id) or np.zeros(len(docs)))
    for _ in range(3):
        teacher(groups[0], ["a", "b"])
    assert len(calls) == 1  # one teacher pass per group, not one per epoch


def test_mining_refuses_test_split():
    from rerank_lab.train.negatives import mine_groups

    with pytest.raises(ValueError, match="test split"):
        mine_groups(load_dataset("toy"), BM25())

def test_a_checkpoint_holding_pickled_code_is_refused_in_one_line(tmp_path):
    import os

    import torch

    from rerank_lab.train.cross_encoder import UnsafeCheckpoint, load_checkpoint

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)

    planted = tmp_path / "ce-planted.pt"
    torch.save({"model": {}, "step": 3, "curve": [0.5], "torch_rng": torch.get_rng_state(), "x": Payload()}, planted)
    with pytest.raises(UnsafeCheckpoint) as refused:
        load_checkpoint(planted)
    message = str(refused.value)
    assert "\n" not in message and str(planted) in message and "delete it" in message
    assert not (tmp_path / "ran").exists()  # nothing in it was run
    honest = tmp_path / "ce-honest.pt"
    torch.save({"model": {"w": torch.ones(2)}, "step": 3, "curve": [0.5], "torch_rng": torch.get_rng_state()}, honest)
    assert load_checkpoint(honest)["step"] == 3
