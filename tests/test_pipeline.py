import pytest

from rerank_lab import BM25, BaseReranker, Cascade, Dense, RRF, Run, evaluate, parse_pipeline
from rerank_lab.first_stage.fusion import fuse


class Recorder(BaseReranker):
    """A real (lexical-overlap) reranker that records how many candidates it saw per query."""

    def __init__(self, name, weight=1.0):
        super().__init__()
        self.name, self.weight, self.seen = name, weight, []

    def score(self, query, documents):
        self.seen.append(len(documents))
        self.count("calls")
        terms = set(query.lower().split())
        return [self.weight * len(terms & set(d.lower().split())) + len(d) * 1e-6 for d in documents]


def test_three_stage_cascade_equals_stages_by_hand(scifact):
    ds = scifact.sample(n_queries=8, seed=3)
    bm25, a, b = BM25(), Recorder("a"), Recorder("b", weight=-1.0)
    cascade = bm25 % 50 >> a % 20 >> b % 5
    assert isinstance(cascade, Cascade) and [s.name for s in cascade.stages] == ["bm25%50", "a%20", "b%5"]
    run = cascade(ds)

    by_hand = bm25.retrieve(ds.queries, ds.corpus, 50)
    a_hand, b_hand = Recorder("a"), Recorder("b", weight=-1.0)
    scores = {q: dict(zip(by_hand.doc_ids(q), a_hand.score(ds.queries[q].text,
                                                           [ds.corpus[d].full_text for d in by_hand.doc_ids(q)])))
              for q in ds.queries}
    mid = Run.from_scores(scores).top(20)
    scores = {q: dict(zip(mid.doc_ids(q), b_hand.score(ds.queries[q].text,
                                                       [ds.corpus[d].full_text for d in mid.doc_ids(q)])))
              for q in ds.queries}
    final = Run.from_scores(scores).top(5)

    assert run.rankings == final.rankings
    assert a.seen == [50] * len(ds.queries) and b.seen == [20] * len(ds.queries)
    assert [c.stage for c in run.costs] == ["bm25", "a", "b"]
    assert [c.items_scored for c in run.costs[1:]] == [50 * 8, 20 * 8]
    assert run.costs[1].counters == {"calls": 8} and run.costs[2].queries == 8


def test_plain_function_is_a_reranker(toy):
    def overlap(query, documents):
        return [len(set(query.split()) & set(d.split())) for d in documents]

    run = (BM25() % 5 >> overlap)(toy)
    assert run.costs[-1].stage == "overlap" and all(len(r) <= 5 for r in run.rankings.values())


def test_reranker_needs_candidates(toy):
    with pytest.raises(ValueError, match="give it candidates"):
        Recorder("x")(toy)


def test_wrong_number_of_scores_is_reported(toy):
    with pytest.raises(ValueError, match="returned 1 scores for 5 documents"):
        (BM25() % 5 >> (lambda q, d: [1.0]))(toy)


def test_bad_cutoff():
    with pytest.raises(ValueError, match="positive integer"):
        BM25() % 0


def test_rrf_matches_hand_computation():
    r1 = Run.from_scores({"q": {"a": 3.0, "b": 2.0, "c": 1.0}})
    r2 = Run.from_scores({"q": {"c": 0.9, "a": 0.5}})
    fused = fuse([r1, r2], k=60)["q"]
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)


def test_bm25_reproduces_pyserini_flat(scifact, nfcorpus):
    # pyserini BM25 flat: SciFact 0.6789, NFCorpus 0.3218 (REFERENCE_NUMBERS.md)
    assert evaluate(BM25()(scifact), scifact.qrels, ["ndcg@10"])["ndcg@10"] == pytest.approx(0.6789, abs=0.005)
    assert evaluate(BM25()(nfcorpus), nfcorpus.qrels, ["ndcg@10"])["ndcg@10"] == pytest.approx(0.3218, abs=0.005)


def test_bm25_index_is_cached_on_disk(toy):
    first = BM25()
    first.retrieve(toy.queries, toy.corpus, 5)
    second = BM25()
    import bm25s

    calls = []
    original = bm25s.BM25.index
    bm25s.BM25.index = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        run = second.retrieve(toy.queries, toy.corpus, 5)
    finally:
        bm25s.BM25.index = original
    assert calls == [] and run.rankings == first.retrieve(toy.queries, toy.corpus, 5).rankings


def test_dense_embeddings_cached_and_search_exact(toy):
    import numpy as np

    dense = Dense()
    run = dense.retrieve(toy.queries, toy.corpus, 3)
    ids, matrix = dense.corpus_embeddings(toy.corpus)
    q = dense.encode([toy.queries["q2"].text])
    expected = [ids[i] for i in np.argsort(-(q @ matrix.T)[0])[:3]]
    assert run.doc_ids("q2") == expected
    assert run.doc_ids("q2")[0] == "hc-reset"  # "I forgot my password"

    fresh = Dense()
    fresh.encode = lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-encoded the corpus"))
    ids2, matrix2 = fresh.corpus_embeddings(toy.corpus)
    assert ids2 == ids and np.array_equal(matrix2, matrix)


def test_specs(toy):
    p = parse_pipeline("bm25%3")
    assert p.name == "bm25%3" and all(len(r) <= 3 for r in p(toy).rankings.values())
    with pytest.raises(ValueError, match="must start with a first stage"):
        parse_pipeline("ce>>bm25")
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        parse_pipeline("bm25>>nope")
    with pytest.raises(ValueError, match="cannot read"):
        parse_pipeline("bm25%%3")


def test_hybrid_fuses_both_first_stages(toy):
    hybrid = RRF([BM25(), Dense()])
    run = (hybrid % 4)(toy)
    assert all(len(r) == 4 for r in run.rankings.values())
    assert run.costs[0].stage == "hybrid" and run.costs[0].items_scored > 0
