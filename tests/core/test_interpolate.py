"""Score mixing: endpoints, the rerank depth, both normalisations, checked by hand."""
import numpy as np
import pytest

from rerank_lab import BM25, Interpolate, Rerank, Run
from rerank_lab.core.interpolate import interpolate_runs, normalised
from tests.support import Recorder

PREVIOUS = Run.from_scores({"q": {"a": 10.0, "b": 8.0, "c": 7.0, "d": 1.0}})
RERANKED = Run.from_scores({"q": {"a": 0.0, "b": 1.0, "c": 5.0}})  # scores for the top 3 only


def test_alpha_endpoints(toy):
    rec = Recorder("overlap")
    first = (BM25() % 6)(toy)
    alone = Rerank(rec).transform(toy.queries, toy.corpus, first)
    only_new = Interpolate(rec, alpha=1.0).transform(toy.queries, toy.corpus, first)
    only_old = Interpolate(rec, alpha=0.0).transform(toy.queries, toy.corpus, first)
    for q in toy.queries:
        assert only_new.doc_ids(q) == alone.doc_ids(q)
        assert only_old.doc_ids(q) == first.doc_ids(q)
    with pytest.raises(ValueError, match="alpha"):
        Interpolate(rec, alpha=2)
    with pytest.raises(TypeError, match="mixes a reranker"):
        Interpolate(BM25())


@pytest.mark.parametrize("how", ["zscore", "minmax"])
def test_mixture_by_hand_with_documents_below_the_rerank_depth(how):
    mixed = interpolate_runs(PREVIOUS, RERANKED, alpha=0.3, normalise=how)
    old, new = np.array([10.0, 8.0, 7.0]), np.array([0.0, 1.0, 5.0])
    if how == "zscore":
        z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    else:
        z = lambda x: (x - x.min()) / (x.max() - x.min())  # noqa: E731
    expected = 0.3 * z(new) + 0.7 * z(old)
    got = dict(mixed["q"])
    assert [got[d] for d in "abc"] == pytest.approx(expected.tolist())
    # "d" was not reranked: it stays under every reranked document
    assert mixed.doc_ids("q")[-1] == "d" and got["d"] < min(expected)


def test_rerank_depth_scores_only_the_head(toy):
    rec = Recorder("overlap")
    first = (BM25() % 6)(toy)
    run = Interpolate(rec, alpha=0.5, rerank_depth=3).transform(toy.queries, toy.corpus, first)
    assert set(rec.seen) <= {3} and len(rec.seen) == len(toy.queries)
    for q in toy.queries:
        assert run.doc_ids(q)[3:] == first.doc_ids(q)[3:]  # the tail keeps its order
        assert set(run.doc_ids(q)[:3]) == set(first.doc_ids(q)[:3])
    assert run.costs[-1].stage == "overlap~0.5"


def test_constant_scores_normalise_to_zero():
    assert normalised({"a": 2.0, "b": 2.0}) == {"a": 0.0, "b": 0.0}
    assert normalised({}, "minmax") == {}
    with pytest.raises(ValueError, match="normalise"):
        normalised({"a": 1.0}, "rank")


def test_fuse_weighs_the_previous_run_and_each_inputs_own_scores(toy):
    from rerank_lab.core.interpolate import Fuse
    from rerank_lab.core.provenance import provenance

    first = (BM25() % 6)(toy)
    rec = Recorder("overlap")
    keep = Fuse((rec,), weights=(1.0, 0.0), rerank_depth=4).transform(toy.queries, toy.corpus, first)
    alone = Rerank(rec).transform(toy.queries, toy.corpus, first.top(4))
    only_rec = Fuse((rec,), weights=(0.0, 1.0), rerank_depth=4).transform(toy.queries, toy.corpus, first)
    for q in toy.queries:
        assert keep.doc_ids(q) == first.doc_ids(q)
        assert only_rec.doc_ids(q)[:4] == alone.doc_ids(q) and only_rec.doc_ids(q)[4:] == first.doc_ids(q)[4:]
    # a first stage as an input contributes the score it gives each candidate over the whole corpus
    q = next(iter(toy.queries))
    by_hand = normalised(dict((BM25() % 1000)(toy).rankings[q]))
    fused = Fuse((BM25(),), weights=(0.0, 1.0), rerank_depth=None).transform(toy.queries, toy.corpus, first)
    expected = sorted(first.doc_ids(q), key=lambda d: -normalised({x: by_hand.get(x, min(by_hand.values()))
                                                                   for x in first.doc_ids(q)})[d])
    assert fused.doc_ids(q) == expected
    with pytest.raises(ValueError, match="one weight for the previous run"):
        Fuse((rec,), weights=(1.0,))
    tuned = Fuse((rec,), weights=(1.0, 0.5), trained_on=("scifact:train",))
    assert [r.label for r in provenance(tuned)] == ["scifact:train"]
