"""Cross-encoder reranker: equality with sentence-transformers, cache, truncation, tuned settings
(training: tests/train/test_cross_encoder.py; the OpenVINO graphs: tests/components/test_openvino.py).

Offline: the test models are the all-MiniLM-L6-v2 body with a seeded classification head,
saved to a tmp folder (equality does not need a trained head).
"""
from __future__ import annotations

import numpy as np
import pytest

from rerank_lab.components import openvino
from rerank_lab.core.stage import Rerank
from rerank_lab.data import load_dataset
from rerank_lab.first_stage import BM25
from rerank_lab.rerankers.cross_encoder import CrossEncoderScorer, cross_encoder
from tests.support import seeded_cross_encoder

QUERY = "how do I reset my password"
DOCS = [
    "To reset your password, open settings and choose 'forgot password'.",
    "Paris is the capital of France.",
    "",
    "Password resets need the email address of the account " * 3,
]
@pytest.fixture(scope="module")
def one_logit(tmp_path_factory):
    return seeded_cross_encoder(tmp_path_factory.mktemp("ce1"), 1)


@pytest.fixture(scope="module")
def two_logit(tmp_path_factory):
    return seeded_cross_encoder(tmp_path_factory.mktemp("ce2"), 2)


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
