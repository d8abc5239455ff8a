"""Stages and their algebra: cascades, cut-offs, value identity, the reranker protocol."""
import dataclasses

import pytest

from rerank_lab import BM25, Cascade, Dense, Rerank, Run, parse_pipeline
from rerank_lab.core.reranker import FunctionReranker
from tests.support import Recorder, overlap


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
    assert run.rankings == Run.from_scores(scores).top(5).rankings
    assert a.seen == [50] * 8 and b.seen == [20] * 8
    assert [c.stage for c in run.costs] == ["bm25", "a", "b"]
    assert [c.items_scored for c in run.costs[1:]] == [50 * 8, 20 * 8]
    assert run.costs[1].counters == {"calls": 8} and run.costs[2].queries == 8


def test_plain_function_is_a_reranker_on_either_side_of_rshift(toy):
    run = (BM25() % 5 >> overlap)(toy)
    assert run.costs[-1].stage == "overlap" and all(len(r) <= 5 for r in run.rankings.values())
    # fn >> stage: the function reranks first, then the stage (once crashed with AttributeError)
    chained = overlap >> Recorder("r")
    assert isinstance(chained, Cascade) and chained.name == "overlap >> r"
    run = (BM25() % 5 >> chained)(toy)
    assert [c.stage for c in run.costs] == ["bm25", "overlap", "r"]


def test_stages_are_values():
    assert BM25() == BM25() and hash(BM25()) == hash(BM25())
    assert BM25(k1=1.2) != BM25()
    assert parse_pipeline("bm25%10>>maxsim") == parse_pipeline("bm25%10>>maxsim")
    assert parse_pipeline("bm25%10>>maxsim") != parse_pipeline("bm25%20>>maxsim")
    assert Rerank(overlap) == Rerank(overlap) and FunctionReranker(overlap) != FunctionReranker(len)
    with pytest.raises(dataclasses.FrozenInstanceError):
        BM25().k1 = 2.0  # settings are never changed on a live stage: build a new one
    assert dataclasses.replace(BM25(), k1=1.2) == BM25(k1=1.2)


def test_reranker_needs_candidates(toy):
    with pytest.raises(ValueError, match="give it candidates"):
        Recorder("x")(toy)


def test_wrong_number_of_scores_is_reported(toy):
    with pytest.raises(ValueError, match="returned 1 scores for 5 documents"):
        (BM25() % 5 >> (lambda q, d: [1.0]))(toy)


def test_not_a_reranker_is_refused():
    with pytest.raises(TypeError, match="is not a reranker"):
        BM25() >> 3


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_cutoff(k):
    with pytest.raises(ValueError, match="positive integer"):
        BM25() % k


def test_batched_queries_give_the_same_run_and_exact_per_query_items(toy):
    from dataclasses import dataclass

    from rerank_lab.core.stage import Scorer

    @dataclass(frozen=True)
    class Overlap(Scorer):
        name: str = "overlap"

        def score(self, query, documents):
            self.count("score_calls")
            return overlap(query, documents)

        def score_batch(self, requests):
            self.count("batches")
            return [overlap(q, d) for q, d in requests]

    first = (BM25() % 6)(toy)
    one = Rerank(Overlap()).transform(toy.queries, toy.corpus, first)
    many = Rerank(Overlap(), batch_queries=3).transform(toy.queries, toy.corpus, first)
    assert one.rankings == many.rankings
    assert many.costs[-1].counters["batches"] == 2 and "score_calls" not in many.costs[-1].counters
    assert 0 < sum(many.costs[-1].per_query_seconds.values()) <= many.costs[-1].seconds
    assert many.costs[-1].items_scored == one.costs[-1].items_scored


def test_specs(toy):
    p = parse_pipeline("bm25%3")
    assert p.name == "bm25%3" and all(len(r) <= 3 for r in p(toy).rankings.values())
    assert parse_pipeline("hybrid>>maxsim").stages[0].k == 100
    with pytest.raises(ValueError, match="must start with a first stage"):
        parse_pipeline("ce>>bm25")
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        parse_pipeline("bm25>>nope")
    with pytest.raises(ValueError, match="cannot read"):
        parse_pipeline("bm25%%3")
    with pytest.raises(ValueError, match="positive integer"):
        parse_pipeline("bm25%0")


def test_dense_and_bm25_compose_in_a_cascade(toy):
    run = (Dense() % 4 >> Rerank(overlap) % 2)(toy)
    assert all(len(r) == 2 for r in run.rankings.values())
