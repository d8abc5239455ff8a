"""Cross-encoder reranker: equality with sentence-transformers, cache, truncation, training.

Offline: the test models are the all-MiniLM-L6-v2 body with a seeded classification head,
saved to a tmp folder (equality does not need a trained head).
"""
from __future__ import annotations

import numpy as np
import pytest

from rerank_lab.data import load_dataset
from rerank_lab.first_stage import BM25
from rerank_lab.models import MINILM, resolve_model
from rerank_lab.rerankers.cross_encoder import CrossEncoder

QUERY = "how do I reset my password"
DOCS = [
    "To reset your password, open settings and choose 'forgot password'.",
    "Paris is the capital of France.",
    "",
    "Password resets need the email address of the account " * 3,
]


def _make_model(folder, num_labels):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(resolve_model(MINILM), num_labels=num_labels)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model(MINILM)).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def one_logit(tmp_path_factory):
    return _make_model(tmp_path_factory.mktemp("ce1"), 1)


@pytest.fixture(scope="module")
def two_logit(tmp_path_factory):
    return _make_model(tmp_path_factory.mktemp("ce2"), 2)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("backend", ["openvino", "torch"])
def test_equals_sentence_transformers(one_logit, backend):
    import torch
    from sentence_transformers import CrossEncoder as STCrossEncoder

    st = STCrossEncoder(one_logit, max_length=32, device="cpu")
    pairs = [(QUERY, d) for d in DOCS]
    ours = CrossEncoder(one_logit, max_length=32, batch_size=2, backend=backend, cache=False)
    raw = st.predict(pairs, batch_size=2, activation_fn=torch.nn.Identity())
    assert np.abs(np.asarray(ours.score(QUERY, DOCS)) - raw).max() <= 1e-4
    assert (ours._openvino is not None) == (backend == "openvino")  # the backend asked for is the one that ran
    if backend == "openvino":  # threads= reaches OpenVINO, not only torch
        one = CrossEncoder(one_logit, max_length=32, backend=backend, threads=1, cache=False)
        assert np.abs(np.asarray(one.score(QUERY, DOCS)) - raw).max() <= 1e-4
        assert int(one._openvino.get_compiled_model().get_property("INFERENCE_NUM_THREADS")) == 1
    sig = CrossEncoder(one_logit, max_length=32, activation="sigmoid", backend=backend, cache=False)
    assert np.abs(np.asarray(sig.score(QUERY, DOCS)) - st.predict(pairs, activation_fn=torch.nn.Sigmoid())).max() <= 1e-4


def test_two_logit_head_matches_softmax(two_logit):
    import torch
    from sentence_transformers import CrossEncoder as STCrossEncoder

    st = STCrossEncoder(two_logit, max_length=32, device="cpu")
    probs = torch.softmax(torch.tensor(st.predict([(QUERY, d) for d in DOCS], activation_fn=torch.nn.Identity())),
                          dim=1)[:, 1].numpy()
    ours = CrossEncoder(two_logit, max_length=32, activation="softmax", cache=False)
    assert np.abs(np.asarray(ours.score(QUERY, DOCS)) - probs).max() <= 1e-4


@pytest.mark.parametrize("backend", ["openvino", "torch"])
def test_fast_mode_close_to_exact(one_logit, backend):
    exact = CrossEncoder(one_logit, max_length=32, cache=False).score(QUERY, DOCS)
    fast = CrossEncoder(one_logit, max_length=32, mode="fast", backend=backend, cache=False, refine_margin=0)
    scores = fast.score(QUERY, DOCS)
    assert np.corrcoef(exact, scores)[0, 1] > 0.95
    assert np.abs(np.asarray(exact) - np.asarray(scores)).max() < 0.05  # bf16 rounding, not another model
    # pairs of other lengths in one call: the converted graph takes any batch and sequence length
    mixed = fast.score(QUERY, [DOCS[0] * 5, "x"])
    assert len(mixed) == 2 and all(np.isfinite(mixed))


def test_fast_openvino_graph_is_converted_once(one_logit):
    from rerank_lab.cache import cache_dir

    CrossEncoder(one_logit, max_length=32, mode="fast", cache=False).score(QUERY, DOCS[:1])
    graphs = sorted(p.parent for p in cache_dir("openvino").glob("*/model.xml"))
    assert graphs
    stamp = {g: (g / "model.bin").stat().st_mtime_ns for g in graphs}
    CrossEncoder(one_logit, max_length=32, mode="fast", cache=False).score(QUERY, DOCS[:1])
    assert {g: (g / "model.bin").stat().st_mtime_ns for g in graphs} == stamp
    with pytest.raises(ValueError, match="backend"):
        CrossEncoder(one_logit, backend="onnx")


def test_int8_openvino_weights_are_int8_compressed_once_and_keep_the_ranking(one_logit):
    import openvino as ov

    from rerank_lab.cache import cache_dir

    exact = CrossEncoder(one_logit, max_length=32, cache=False).score(QUERY, DOCS)
    scores = CrossEncoder(one_logit, max_length=32, mode="int8", cache=False, refine_margin=0).score(QUERY, DOCS)
    assert np.corrcoef(exact, scores)[0, 1] > 0.9
    assert not np.allclose(exact, scores, atol=1e-6)  # quantised, not the float model again
    graphs = sorted(cache_dir("openvino").glob("*/w8/model.xml"))
    assert graphs
    int8_weights = {op.get_friendly_name() for op in ov.Core().read_model(graphs[0]).get_ops()
                    if op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() in ("u8", "i8")
                    and not op.get_friendly_name().endswith("zero_point")}
    assert len(int8_weights) == 6 * 6  # every Linear of the 6-layer encoder is int8 on disk
    assert not [w for w in int8_weights if "classifier" in w or "pooler" in w]
    stamp = {g: g.stat().st_mtime_ns for g in graphs}
    CrossEncoder(one_logit, max_length=32, mode="int8", cache=False).score(QUERY, DOCS[:1])
    assert {g: g.stat().st_mtime_ns for g in graphs} == stamp


def test_close_calls_at_the_top_are_rescored_exactly(one_logit, tmp_path):
    from rerank_lab.rerankers.cross_encoder import close_calls

    assert close_calls([3.450, 3.449, 1.1, 0.9], margin=0.01, top=10) == [0, 1]
    assert close_calls([0.9, 5.0, 4.995, 0.905], margin=0.01, top=2) == [1, 2]  # the tie below the top 2 waits
    assert close_calls([0.9, 5.0, 4.995, 0.905], margin=0.01, top=4) == [0, 1, 2, 3]
    assert close_calls([1.0, 1.0], margin=0.0, top=10) == []
    with pytest.raises(ValueError, match="refine_margin"):
        CrossEncoder(one_logit, mode="fast", refine_margin=-1)

    path = tmp_path / "scores.sqlite"
    exact = CrossEncoder(one_logit, max_length=32, cache=False).score(QUERY, DOCS)
    raw = CrossEncoder(one_logit, max_length=32, mode="fast", refine_margin=0, cache_path=path).score(QUERY, DOCS)
    assert np.abs(np.asarray(raw) - exact).max() > 1e-4  # bf16: there is something to refine
    # A margin wider than the score range makes every candidate a close call: all exact.
    wide = CrossEncoder(one_logit, max_length=32, mode="fast", refine_margin=100.0, cache_path=path)
    assert np.abs(np.asarray(wide.score(QUERY, DOCS)) - exact).max() <= 1e-4
    assert wide.counters["refined_pairs"] == len(DOCS)
    assert wide.counters["cache_hits"] == len(DOCS)  # the bf16 scores were cached unrefined
    # the exact scores went to the cache that mode="exact" reads
    reader = CrossEncoder(one_logit, max_length=32, cache_path=path)
    assert reader.score(QUERY, DOCS) == pytest.approx(exact, abs=1e-4)
    assert reader.counters["cache_hits"] == len(DOCS) and reader._model is None
    # top=1 with a narrow margin: only a tie with the winner is refined
    narrow = CrossEncoder(one_logit, max_length=32, mode="fast", refine_margin=1e-9, refine_top=1, cache_path=path)
    narrow.score(QUERY, DOCS)
    assert narrow.counters.get("refined_pairs", 0) == 0


def test_cache_hits_and_resume(one_logit, tmp_path):
    path = tmp_path / "scores.sqlite"
    first = CrossEncoder(one_logit, max_length=32, cache_path=path)
    scores = first.score(QUERY, DOCS)
    assert first.counters["cache_misses"] == len(DOCS) and first.counters.get("cache_hits", 0) == 0
    again = CrossEncoder(one_logit, max_length=32, cache_path=path)
    assert again.score(QUERY, DOCS) == pytest.approx(scores)
    assert again.counters["cache_hits"] == len(DOCS) and again._model is None  # no model load at all
    # another max length is another key
    other = CrossEncoder(one_logit, max_length=16, cache_path=path)
    other.score(QUERY, DOCS[:1])
    assert other.counters.get("cache_hits", 0) == 0

    # An interrupted pipeline resumes: queries scored before the crash are cache hits.
    toy = load_dataset("toy")
    run = (BM25() % 3)(toy)
    crashing = CrossEncoder(one_logit, max_length=32, cache_path=tmp_path / "resume.sqlite")
    calls = {"n": 0}
    original = crashing._score_uncached

    def flaky(query, documents):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(query, documents)

    crashing._score_uncached = flaky
    with pytest.raises(KeyboardInterrupt):
        crashing.transform(toy.queries, toy.corpus, run)
    resumed = CrossEncoder(one_logit, max_length=32, cache_path=tmp_path / "resume.sqlite")
    resumed.transform(toy.queries, toy.corpus, run)
    done_before = sum(len(run.doc_ids(q)) for q in list(run.rankings)[:2])
    assert resumed.counters["cache_hits"] == done_before


def test_truncation_counted_and_passages(one_logit):
    long_doc = "password reset instructions and account recovery steps " * 40
    ce = CrossEncoder(one_logit, max_length=64, cache=False)
    ce.score(QUERY, [long_doc, "short"])
    assert ce.counters["truncated_pairs"] == 1
    for agg in ("firstp", "maxp", "sump"):
        p = CrossEncoder(one_logit, max_length=64, passages=agg, cache=False)
        (s,) = p.score(QUERY, [long_doc])
        assert np.isfinite(s)
        assert p.counters["passages"] == (1 if agg == "firstp" else p.counters["passages"])
        if agg != "firstp":
            assert p.counters["passages"] > 3 and p.counters.get("truncated_pairs", 0) == 0


def test_bad_inputs(one_logit):
    ce = CrossEncoder(one_logit, max_length=64, cache=False)
    assert ce.score(QUERY, []) == []
    scores = ce.score(QUERY, ["", "word " * 20_000, "a normal document"])
    assert len(scores) == 3 and all(np.isfinite(scores))
    assert ce.counters["truncated_pairs"] == 1
    with pytest.raises(ValueError, match="mode"):
        CrossEncoder(one_logit, mode="turbo")


def test_interpolation_and_depth(one_logit):
    toy = load_dataset("toy")
    first = (BM25() % 5)(toy)
    ce = CrossEncoder(one_logit, max_length=32, cache=False, depth=2, alpha=0.0)
    run = ce.transform(toy.queries, toy.corpus, first)
    for q in first.rankings:  # alpha=0 keeps the first-stage order
        assert run.doc_ids(q) == first.doc_ids(q)
    assert run.costs[-1].items_scored == sum(min(2, len(first.doc_ids(q))) for q in first.rankings)


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

    # the full recipe runs, checkpoints, resumes and exports a loadable reranker
    result = train_cross_encoder(config, progress=False)
    assert result.steps == 2 and len(result.curve) == 2
    resumed = train_cross_encoder(TrainConfig(**{**config.__dict__, "max_steps": 3}), progress=False)
    assert resumed.steps == 3 and resumed.curve[:2] == result.curve
    ce = CrossEncoder(config.output, max_length=64, cache=False)
    assert len(ce.score(QUERY, DOCS)) == len(DOCS)


def test_training_data_bundle_trains_like_mining_and_names_a_mismatch(tmp_path, monkeypatch):
    from dataclasses import asdict, replace

    from rerank_lab.train.cross_encoder import (TrainConfig, build_groups, load_training_data, memoized,
                                                save_training_data, train_cross_encoder)

    config = TrainConfig(output=str(tmp_path / "mined"), datasets=("toy",), teacher="ensemble", n_negatives=3,
                         max_length=64, groups_per_step=2, max_steps=2, checkpoint_every=100, max_minutes=None,
                         bf16=False, device="cpu")
    bundle = save_training_data(config, tmp_path / "data.json.gz")
    groups, texts, tuning, _ = load_training_data(bundle, config)
    mined, mined_texts, mined_tuning = build_groups(config)
    assert [asdict(g) for g in groups] == [asdict(g) for g in mined] and tuning == mined_tuning
    assert all(texts[g.dataset][d] == mined_texts[g.dataset][d] for g in groups for d in [g.positive, *g.negatives])
    with pytest.raises(ValueError, match="n_negatives.*--prepare"):
        load_training_data(bundle, replace(config, n_negatives=5))

    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache-a"))  # no checkpoint to resume from
    from_mining = train_cross_encoder(config, progress=False)
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache-b"))
    from_bundle = train_cross_encoder(replace(config, output=str(tmp_path / "bundled")), progress=False, data=bundle)
    assert from_bundle.steps == 2 and np.allclose(from_bundle.curve, from_mining.curve, atol=1e-5)

    calls = []
    teacher = memoized(lambda group, docs: calls.append(group.query_id) or np.zeros(len(docs)))
    for _ in range(3):
        teacher(groups[0], ["a", "b"])
    assert len(calls) == 1  # one teacher pass per group, not one per epoch


def test_mining_refuses_test_split():
    from rerank_lab.train.negatives import mine_groups

    with pytest.raises(ValueError, match="test split"):
        mine_groups(load_dataset("toy"), BM25())


def test_lab_cross_encoder_reads_its_tuned_settings(tmp_path):
    import json

    from rerank_lab.rerankers.cross_encoder import lab_cross_encoder

    with pytest.raises(FileNotFoundError, match="python -m rerank_lab.train.cross_encoder"):
        lab_cross_encoder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "training.json").write_text(json.dumps({"config": {"max_length": 96}}))
    (tmp_path / "interpolation.json").write_text(json.dumps({"alpha": 0.3, "depth": 20, "passages": "maxp"}))
    ce = lab_cross_encoder(tmp_path)
    assert (ce.alpha, ce.depth, ce.passages, ce.max_length, ce.mode) == (0.3, 20, "maxp", 96, "fast")
    assert lab_cross_encoder(tmp_path, alpha=1.0, passages=None).passages is None  # arguments override the file
