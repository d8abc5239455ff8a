"""Cross-encoder reranker: equality with sentence-transformers, cache, truncation, training.

Offline: the test models are the all-MiniLM-L6-v2 body with a seeded classification head,
saved to a tmp folder (equality does not need a trained head).
"""
from __future__ import annotations

import numpy as np
import pytest

from rerank_lab.components import openvino
from rerank_lab.components.models import MINILM, resolve_model
from rerank_lab.core.stage import Rerank
from rerank_lab.data import load_dataset
from rerank_lab.first_stage import BM25
from rerank_lab.rerankers.cross_encoder import CrossEncoderScorer, cross_encoder

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
    ours = CrossEncoderScorer(one_logit, max_length=32, batch_size=2, backend=backend)
    raw = st.predict(pairs, batch_size=2, activation_fn=torch.nn.Identity())
    assert np.abs(np.asarray(ours.score(QUERY, DOCS)) - raw).max() <= 1e-4
    assert ("openvino" in ours._state) == (backend == "openvino")  # the backend asked for is the one that ran
    if backend == "openvino":  # threads= reaches OpenVINO, not only torch
        one = CrossEncoderScorer(one_logit, max_length=32, backend=backend, threads=1)
        assert np.abs(np.asarray(one.score(QUERY, DOCS)) - raw).max() <= 1e-4
        assert int(one._state["openvino"].get_compiled_model().get_property("INFERENCE_NUM_THREADS")) == 1
    sig = CrossEncoderScorer(one_logit, max_length=32, activation="sigmoid", backend=backend)
    assert np.abs(np.asarray(sig.score(QUERY, DOCS)) - st.predict(pairs, activation_fn=torch.nn.Sigmoid())).max() <= 1e-4


def test_two_logit_head_matches_softmax(two_logit):
    import torch
    from sentence_transformers import CrossEncoder as STCrossEncoder

    st = STCrossEncoder(two_logit, max_length=32, device="cpu")
    probs = torch.softmax(torch.tensor(st.predict([(QUERY, d) for d in DOCS], activation_fn=torch.nn.Identity())),
                          dim=1)[:, 1].numpy()
    ours = CrossEncoderScorer(two_logit, max_length=32, activation="softmax")
    assert np.abs(np.asarray(ours.score(QUERY, DOCS)) - probs).max() <= 1e-4


def test_cross_query_batches_equal_per_query_scores(one_logit):
    scorer = CrossEncoderScorer(one_logit, max_length=32, batch_size=3)
    requests = [(QUERY, DOCS), ("capital of france", DOCS[:2]), ("nothing", [])]
    batched = scorer.score_batch(requests)
    assert [len(b) for b in batched] == [4, 2, 0]
    for (query, docs), got in zip(requests, batched):
        assert got == pytest.approx(scorer.score(query, docs), abs=1e-5)


def test_fast_mode_close_to_exact_in_bf16(one_logit):
    exact = CrossEncoderScorer(one_logit, max_length=32).score(QUERY, DOCS)
    fast = CrossEncoderScorer(one_logit, max_length=32, mode="fast", backend="torch")  # bf16 weights on any CPU
    scores = fast.score(QUERY, DOCS)
    assert np.corrcoef(exact, scores)[0, 1] > 0.95
    assert 0 < np.abs(np.asarray(exact) - np.asarray(scores)).max() < 0.05  # bf16 rounding, not another model
    mixed = fast.score(QUERY, [DOCS[0] * 5, "x"])  # any batch and sequence length
    assert len(mixed) == 2 and all(np.isfinite(mixed))


def test_fast_without_bf16_kernels_is_exact_and_shares_its_cache(one_logit):
    fast = CrossEncoderScorer(one_logit, max_length=32, mode="fast", backend="openvino")
    if openvino.supports("BF16"):
        assert fast.precision == "fast" and fast.identity()["precision"] == "fast-openvino"
    else:  # this CPU: OpenVINO runs the bf16 hint in fp32, so there is nothing to refine or keep apart
        assert fast.precision == "exact" and fast.identity() == CrossEncoderScorer(one_logit, max_length=32).identity()
        assert not hasattr(cross_encoder(one_logit, mode="fast", max_length=32), "approximate")


def test_openvino_graph_is_converted_once(one_logit):
    from rerank_lab.components.stores import cache_dir

    openvino._COMPILED.clear()  # compiled requests are shared per process: start from a cold one
    CrossEncoderScorer(one_logit, max_length=32, mode="exact", backend="openvino").score(QUERY, DOCS[:1])
    graphs = sorted(p.parent for p in cache_dir("openvino").glob("*/model.xml"))
    assert graphs
    stamp = {g: (g / "model.bin").stat().st_mtime_ns for g in graphs}
    openvino._COMPILED.clear()
    CrossEncoderScorer(one_logit, max_length=32, mode="exact", backend="openvino").score(QUERY, DOCS[:1])
    assert {g: (g / "model.bin").stat().st_mtime_ns for g in graphs} == stamp
    with pytest.raises(ValueError, match="backend"):
        CrossEncoderScorer(one_logit, backend="onnx")


def test_int8_openvino_weights_are_int8_compressed_once_and_keep_the_ranking(one_logit):
    import openvino as ov

    from rerank_lab.components.stores import cache_dir

    openvino._COMPILED.clear()
    exact = CrossEncoderScorer(one_logit, max_length=32).score(QUERY, DOCS)
    scores = CrossEncoderScorer(one_logit, max_length=32, mode="int8", backend="openvino").score(QUERY, DOCS)
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
    openvino._COMPILED.clear()
    CrossEncoderScorer(one_logit, max_length=32, mode="int8", backend="openvino").score(QUERY, DOCS[:1])
    assert {g: g.stat().st_mtime_ns for g in graphs} == stamp


def test_close_calls_at_the_top_are_rescored_exactly(one_logit):
    with pytest.raises(ValueError, match="refine_margin"):
        cross_encoder(one_logit, mode="fast", refine_margin=-1)
    exact = CrossEncoderScorer(one_logit, max_length=32).score(QUERY, DOCS)
    raw = cross_encoder(one_logit, max_length=32, mode="fast", backend="torch", refine_margin=0).score(QUERY, DOCS)
    assert np.abs(np.asarray(raw) - exact).max() > 1e-4  # bf16: there is something to refine
    # A margin wider than the score range makes every candidate a close call: all exact.
    wide = cross_encoder(one_logit, max_length=32, mode="fast", backend="torch", refine_margin=100.0)
    assert np.abs(np.asarray(wide.score(QUERY, DOCS)) - exact).max() <= 1e-4
    assert wide.counters["refined_pairs"] == len(DOCS)
    assert wide.counters["cache_hits"] >= len(DOCS)  # the bf16 scores were cached unrefined
    # the exact scores went to the cache that mode="exact" reads (torch and OpenVINO fp32 share it)
    reader = cross_encoder(one_logit, max_length=32)
    assert reader.score(QUERY, DOCS) == pytest.approx(exact, abs=1e-4)
    assert reader.counters["cache_hits"] == len(DOCS) and reader.counters.get("pairs", 0) == 0
    narrow = cross_encoder(one_logit, max_length=32, mode="fast", backend="torch", refine_margin=1e-9, refine_top=1)
    narrow.score(QUERY, DOCS)
    assert narrow.counters.get("refined_pairs", 0) == 0


def test_cache_hits_resume_and_honest_model_time(one_logit, tmp_path):
    first = cross_encoder(one_logit, max_length=32)
    scores = first.score(QUERY, DOCS)
    assert first.counters["cache_misses"] == len(DOCS) and first.counters.get("cache_hits", 0) == 0
    again = cross_encoder(one_logit, max_length=32)
    assert again.score(QUERY, DOCS) == pytest.approx(scores)
    assert again.counters["cache_hits"] == len(DOCS) and "load_seconds" not in again.counters  # no model load
    other = cross_encoder(one_logit, max_length=16)  # another max length is another key
    other.score(QUERY, DOCS[:1])
    assert other.counters.get("cache_hits", 0) == 0

    # cold and warm runs of a pipeline: the same model latency, far less wall time
    toy = load_dataset("toy")
    run = (BM25() % 5)(toy)
    cold = Rerank(cross_encoder(one_logit, max_length=64)).transform(toy.queries, toy.corpus, run).costs[-1]
    warm = Rerank(cross_encoder(one_logit, max_length=64)).transform(toy.queries, toy.corpus, run).costs[-1]
    assert warm.counters["cache_hits"] == cold.items_scored
    assert cold.model_seconds / 1.5 <= warm.model_seconds <= cold.model_seconds * 1.5
    assert warm.seconds < cold.seconds / 2

    # An interrupted pipeline resumes: queries scored before the crash are cache hits.
    crashing = cross_encoder(one_logit, max_length=48)
    calls = {"n": 0}
    inner = crashing.scorer  # Cached(CrossEncoderScorer)
    original = type(inner).predict

    def flaky(self, pairs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, pairs)

    type(inner).predict = flaky
    try:
        with pytest.raises(KeyboardInterrupt):
            crashing.transform(toy.queries, toy.corpus, run)
    finally:
        type(inner).predict = original
    resumed = cross_encoder(one_logit, max_length=48)
    resumed.transform(toy.queries, toy.corpus, run)
    done_before = sum(len(run.doc_ids(q)) for q in list(run.rankings)[:2])
    assert resumed.counters["cache_hits"] == done_before


def test_truncation_counted_and_passages(one_logit):
    long_doc = "password reset instructions and account recovery steps " * 40
    ce = CrossEncoderScorer(one_logit, max_length=64)
    ce.score(QUERY, [long_doc, "short"])
    assert ce.counters["truncated_pairs"] == 1
    for agg in ("firstp", "maxp", "sump"):
        p = cross_encoder(one_logit, max_length=64, passages=agg, cache=False)
        (s,) = p.score(QUERY, [long_doc])
        assert np.isfinite(s)
        assert p.counters.get("truncated_pairs", 0) == 0  # every window fits beside the query
        assert (p.counters["passages"] == 1) == (agg == "firstp")
        if agg != "firstp":
            assert p.counters["passages"] > 3


def test_bad_inputs(one_logit):
    ce = CrossEncoderScorer(one_logit, max_length=64)
    assert ce.score(QUERY, []) == []
    scores = ce.score(QUERY, ["", "word " * 20_000, "a normal document"])
    assert len(scores) == 3 and all(np.isfinite(scores))
    assert ce.counters["truncated_pairs"] == 1
    with pytest.raises(ValueError, match="mode"):
        CrossEncoderScorer(one_logit, mode="turbo")
    with pytest.raises(ValueError, match="passage aggregation"):
        cross_encoder(one_logit, passages="best")


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


def test_lab_cross_encoder_reads_its_tuned_settings(tmp_path):
    import json

    from rerank_lab.core.interpolate import Interpolate
    from rerank_lab.rerankers.cross_encoder import lab_cross_encoder

    with pytest.raises(FileNotFoundError, match="python -m rerank_lab.train.cross_encoder"):
        lab_cross_encoder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "training.json").write_text(json.dumps({"config": {"max_length": 96}}))
    (tmp_path / "tuning.json").write_text(json.dumps(
        {"chosen": {"alpha": 0.3, "rerank_depth": 20, "settings": {"passages": "maxp", "mode": "exact"}}}))
    ce = lab_cross_encoder(tmp_path)
    assert isinstance(ce, Interpolate) and (ce.alpha, ce.rerank_depth, ce.name) == (0.3, 20, "ce")
    passages = ce.scorer.scorer  # Cached(Passages(CrossEncoderScorer))
    assert passages.aggregation == "maxp" and (passages.scorer.max_length, passages.scorer.mode) == (96, "exact")
    pure = lab_cross_encoder(tmp_path, alpha=1.0, rerank_depth=None, passages=None)  # arguments override the file
    assert not isinstance(pure, Interpolate) and pure.scorer.max_length == 96
