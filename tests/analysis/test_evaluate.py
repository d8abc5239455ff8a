import numpy as np
import pytest
import pytrec_eval

from rerank_lab import BM25, Run, evaluate, paired_test
from rerank_lab.analysis.evaluate import holm, parse_metric, randomization_p

TREC = {"ndcg@10": "ndcg_cut_10", "ndcg@100": "ndcg_cut_100", "recall@100": "recall_100", "recall@10": "recall_10",
        "p@10": "P_10", "map": "map"}
# pytrec_eval scores the queries of the run dict it is given; an empty ranking given to it scores 0,
# as ours does by default (trec_eval -c)
SKIP: dict = {}


def _trec_eval(run: Run, qrels, measure_names):
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10,100", "recall.10,100", "P.10", "map", "recip_rank"})
    return evaluator.evaluate(run.to_dict())


def _with_ties(run: Run) -> Run:
    # Round scores so many documents tie: tie order is where hand-written metrics go wrong.
    return Run.from_scores({q: {d: round(s, 0) for d, s in r} for q, r in run.rankings.items()})


@pytest.mark.parametrize("name", ["scifact", "nfcorpus"])
@pytest.mark.parametrize("ties", [False, True])
def test_metrics_equal_pytrec_eval(name, ties, request):
    dataset = request.getfixturevalue(name)
    run = (BM25() % 200)(dataset)
    if ties:
        run = _with_ties(run)
    ours = evaluate(run, dataset.qrels, list(TREC), **SKIP)
    theirs = _trec_eval(run, dataset.qrels, TREC)
    assert ours.queries == len(theirs)
    for metric, trec_name in TREC.items():
        for qid, values in theirs.items():
            assert ours.per_query[metric][qid] == pytest.approx(values[trec_name], abs=1e-6), (metric, qid)
        assert ours[metric] == pytest.approx(np.mean([v[trec_name] for v in theirs.values()]), abs=1e-6)


def test_queries_judged_only_non_relevant_score_as_trec_eval_scores_them(scifact):
    """Queries whose judgments are all 0 (judged, none relevant): every metric 0 per query, still
    averaged in, as trec_eval does; judged@k counts their judged documents."""
    dataset = scifact.sample(20, seed=1)
    run = (BM25() % 100)(dataset)
    qrels = {q: dict(j) for q, j in dataset.qrels.items()}
    no_relevant = sorted(qrels)[:6]
    for q in no_relevant:  # the query's own top 3 judged non-relevant, its relevant documents forgotten
        qrels[q] = {d: 0 for d in run.doc_ids(q, 3)}
    metrics = [*TREC, "mrr@10", "judged@10"]
    ours = evaluate(run, qrels, metrics)
    theirs = _trec_eval(run, qrels, TREC)
    assert set(theirs) == set(qrels) and ours.queries == len(qrels)
    for metric, trec_name in TREC.items():
        for qid, values in theirs.items():
            assert ours.per_query[metric][qid] == pytest.approx(values[trec_name], abs=1e-6), (metric, qid)
        assert ours[metric] == pytest.approx(np.mean([v[trec_name] for v in theirs.values()]), abs=1e-6)
    cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run.top(10).to_dict())
    assert all(ours.per_query["mrr@10"][q] == pytest.approx(cut[q]["recip_rank"], abs=1e-6) for q in qrels)
    for q in no_relevant:
        assert all(ours.per_query[m][q] == 0.0 for m in metrics if m != "judged@10")
        assert ours.per_query["judged@10"][q] == pytest.approx(0.3)


def test_mrr_at_k_equals_trec_eval_on_the_cut_run(nfcorpus):
    run = _with_ties((BM25() % 100)(nfcorpus))
    ours = evaluate(run, nfcorpus.qrels, ["mrr@10", "mrr"], **SKIP)
    cut = pytrec_eval.RelevanceEvaluator(nfcorpus.qrels, {"recip_rank"}).evaluate(run.top(10).to_dict())
    full = pytrec_eval.RelevanceEvaluator(nfcorpus.qrels, {"recip_rank"}).evaluate(run.to_dict())
    for qid in cut:
        assert ours.per_query["mrr@10"][qid] == pytest.approx(cut[qid]["recip_rank"], abs=1e-6)
        assert ours.per_query["mrr"][qid] == pytest.approx(full[qid]["recip_rank"], abs=1e-6)


def test_ignore_identical_ids_drops_the_query_document():
    qrels = {"q1": {"d1": 1}}
    run = Run.from_scores({"q1": {"q1": 9.0, "d1": 5.0}})
    assert evaluate(run, qrels, ["mrr@10"])["mrr@10"] == 0.5
    assert evaluate(run, qrels, ["mrr@10"], ignore_identical_ids=True)["mrr@10"] == 1.0


def test_metric_names_parse_and_bad_names_fail():
    assert parse_metric("nDCG@10") == ("ndcg", 10)
    assert parse_metric("map") == ("map", None)
    assert parse_metric("RR@10") == ("mrr", 10)
    with pytest.raises(ValueError, match="unknown metric 'ndcg'"):
        parse_metric("ndcg")


def test_paired_tests(scifact):
    bm25 = (BM25() % 100)(scifact)
    worse = Run.from_scores({q: {d: -s for d, s in r} for q, r in bm25.rankings.items()})
    a = evaluate(bm25, scifact.qrels, ["ndcg@10"])
    b = evaluate(worse, scifact.qrels, ["ndcg@10"])
    same = paired_test(a, a, "ndcg@10")
    assert same.p_value == 1.0 and same.delta == 0
    t = paired_test(a, b, "ndcg@10")
    assert t.delta < 0 and t.p_value < 1e-6
    from scipy import stats

    x = [a.per_query["ndcg@10"][q] for q in sorted(a.per_query["ndcg@10"])]
    y = [b.per_query["ndcg@10"][q] for q in sorted(a.per_query["ndcg@10"])]
    assert t.p_value == pytest.approx(stats.ttest_rel(y, x).pvalue)
    r = paired_test(a, b, "ndcg@10", method="randomization", n_resamples=2000)
    assert 0 < r.p_value < 0.01 and r.method == "randomization (sampled)"
    assert r.p_value >= 1 / 2001  # the observed sign pattern counts: never 0


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_empty_rankings_count_as_zero_by_default_and_skip_matches_pytrec_eval(nfcorpus):
    run = BM25()(nfcorpus)  # 15 NFCorpus test queries match no BM25 term: empty rankings
    zero = evaluate(run, nfcorpus.qrels, ["ndcg@10"])
    skip = evaluate(run, nfcorpus.qrels, ["ndcg@10"], empty_rankings="skip")
    assert zero.empty_rankings == skip.empty_rankings == 15
    assert zero.queries == len(nfcorpus.qrels) and skip.queries == len(nfcorpus.qrels) - 15
    assert zero["ndcg@10"] == pytest.approx(skip["ndcg@10"] * skip.queries / zero.queries)
    saved = {q: r for q, r in run.to_dict().items() if r}  # a TREC file has no line for an empty ranking
    theirs = pytrec_eval.RelevanceEvaluator(nfcorpus.qrels, {"ndcg_cut.10"}).evaluate(saved)
    assert len(theirs) == skip.queries
    assert skip["ndcg@10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in theirs.values()]), abs=1e-6)
    # a judged query missing from the run entirely is an empty ranking too
    partial = run.subset(list(run.rankings)[:10])
    assert evaluate(partial, nfcorpus.qrels, ["ndcg@10"]).empty_rankings >= len(nfcorpus.qrels) - 10
    with pytest.raises(ValueError, match="empty_rankings"):
        evaluate(run, nfcorpus.qrels, empty_rankings="ignore")


def test_judged_at_k_and_condensed_lists():
    qrels = {"q": {"a": 1, "b": 0, "c": 2}}
    run = Run.from_scores({"q": {"x": 9.0, "a": 8.0, "y": 7.0, "b": 6.0}})
    res = evaluate(run, qrels, ["judged@4", "judged@10", "p@4"])
    assert res["judged@4"] == 0.5 and res["judged@10"] == 0.2 and res["p@4"] == 0.25
    condensed = evaluate(run, qrels, ["mrr@10", "judged@2"], condensed=True)
    assert condensed["mrr@10"] == 1.0 and condensed["judged@2"] == 1.0  # x and y are gone: a is first
    with pytest.raises(ValueError, match="judged@k"):
        parse_metric("judged")


def test_randomization_is_exact_when_enumeration_is_cheap():
    from itertools import product

    diff = np.array([0.3, -0.1, 0.25, 0.05, 0.4, -0.2, 0.15, 0.1])  # n = 8: 256 sign patterns
    p, how = randomization_p(diff)
    observed = abs(diff.mean())
    exact = np.mean([abs(np.dot(s, diff)) / 8 >= observed - 1e-12 for s in product((1, -1), repeat=8)])
    assert how == "exact" and p == pytest.approx(exact)
    sampled, how = randomization_p(diff, n_resamples=100)  # 256 > 100: sampled, still close
    assert how == "sampled" and abs(sampled - exact) < 0.15
    assert randomization_p(np.zeros(5))[0] == 1.0
    for seed in range(5):  # never 0, even for an extreme difference
        extreme = np.full(40, 0.5) + np.random.default_rng(seed).normal(0, 1e-3, 40)
        assert randomization_p(extreme, n_resamples=500, seed=seed)[0] > 0
