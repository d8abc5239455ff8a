"""The approximate dense index (faiss HNSW) against exact search on real SciFact."""
import pytest

from tests.support import required

required("faiss", "ray")

from rerank_lab import Dense  # noqa: E402


def test_hnsw_recall_at_100_against_exact_search_on_scifact(scifact):
    ds = scifact.sample(60, seed=5)
    exact = (Dense() % 100)(ds)
    approx = (Dense(index="hnsw") % 100)(ds)
    recall = sum(len(set(exact.doc_ids(q)) & set(approx.doc_ids(q))) / 100 for q in ds.queries) / len(ds.queries)
    assert recall >= 0.95, recall
    for q in list(ds.queries)[:5]:  # the scores are the same cosines where both found a document
        ex = dict(exact[q])
        assert all(abs(ex[d] - s) < 1e-4 for d, s in approx[q] if d in ex)


def test_unknown_index_is_refused():
    with pytest.raises(ValueError, match="unknown dense index"):
        Dense(index="ivf")
