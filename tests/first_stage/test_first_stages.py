"""First stages against published numbers and by hand; their caches."""
import numpy as np
import pytest

from rerank_lab import BM25, RRF, Dense, Run, evaluate
from rerank_lab.first_stage.fusion import fuse


def test_rrf_matches_hand_computation():
    r1 = Run.from_scores({"q": {"a": 3.0, "b": 2.0, "c": 1.0}})
    r2 = Run.from_scores({"q": {"c": 0.9, "a": 0.5}})
    fused = fuse([r1, r2], k=60)["q"]
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)


def test_rrf_searches_its_inputs_and_retrieve_measures_it(toy):
    bm25, dense = BM25(), Dense()
    hybrid = RRF((bm25, dense))
    expected = fuse([Run.from_scores(bm25.search(toy.queries, toy.corpus, 1000)),
                     Run.from_scores(dense.search(toy.queries, toy.corpus, 1000))], 60, 4)
    run = (hybrid % 4)(toy)
    assert run.to_dict() == expected
    assert all(len(r) == 4 for r in run.rankings.values())
    assert run.costs[0].stage == "hybrid" and run.costs[0].items_scored == 4 * len(toy.queries)


def test_bm25_reproduces_pyserini_flat(scifact, nfcorpus):
    # pyserini BM25 flat: SciFact 0.6789, NFCorpus 0.3218 (REFERENCE_NUMBERS.md; NFCorpus counts
    # the 15 queries BM25 finds nothing for as 0, as trec_eval -c does: see analysis.evaluate)
    assert evaluate(BM25()(scifact), scifact.qrels, ["ndcg@10"])["ndcg@10"] == pytest.approx(0.6789, abs=0.005)
    assert evaluate(BM25()(nfcorpus), nfcorpus.qrels, ["ndcg@10"])["ndcg@10"] == pytest.approx(0.3218, abs=0.005)


def test_bm25_index_is_cached_on_disk_and_rebuilt_when_damaged(toy, tmp_path, monkeypatch):
    import bm25s

    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))  # damage only this test's indexes, not the session's
    first = BM25()
    expected = first.retrieve(toy.queries, toy.corpus, 5).rankings
    calls = []
    original = bm25s.BM25.index
    bm25s.BM25.index = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        assert BM25().retrieve(toy.queries, toy.corpus, 5).rankings == expected and calls == []
        from rerank_lab.components.stores import cache_dir

        for folder in cache_dir("bm25").iterdir():
            for f in folder.glob("*.npy"):
                f.write_bytes(b"not an array")
        with pytest.warns(UserWarning, match="damaged cache"):
            assert BM25().retrieve(toy.queries, toy.corpus, 5).rankings == expected
        assert calls == [1]  # rebuilt once
    finally:
        bm25s.BM25.index = original


def test_dense_embeddings_cached_and_search_exact(toy, monkeypatch):
    dense = Dense()
    run = dense.retrieve(toy.queries, toy.corpus, 3)
    ids, matrix = dense.corpus_embeddings(toy.corpus)
    q = dense.encode([toy.queries["q2"].text])
    assert run.doc_ids("q2") == [ids[i] for i in np.argsort(-(q @ matrix.T)[0])[:3]]
    assert run.doc_ids("q2")[0] == "hc-reset"  # "I forgot my password"

    fresh = Dense()  # a new stage finds the embeddings in the store: nothing is re-encoded
    monkeypatch.setattr(Dense, "encode", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-encoded")))
    ids2, matrix2 = fresh.corpus_embeddings(toy.corpus)
    assert ids2 == ids and np.array_equal(matrix2, matrix)
