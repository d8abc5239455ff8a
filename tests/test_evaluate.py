import numpy as np
import pytest
import pytrec_eval

from rerank_lab import BM25, Run, evaluate, paired_test
from rerank_lab.evaluate import holm, parse_metric

TREC = {"ndcg@10": "ndcg_cut_10", "ndcg@100": "ndcg_cut_100", "recall@100": "recall_100", "recall@10": "recall_10",
        "p@10": "P_10", "map": "map"}


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
    ours = evaluate(run, dataset.qrels, list(TREC))
    theirs = _trec_eval(run, dataset.qrels, TREC)
    assert ours.queries == len(theirs)
    for metric, trec_name in TREC.items():
        for qid, values in theirs.items():
            assert ours.per_query[metric][qid] == pytest.approx(values[trec_name], abs=1e-6), (metric, qid)
        assert ours[metric] == pytest.approx(np.mean([v[trec_name] for v in theirs.values()]), abs=1e-6)


def test_mrr_at_k_equals_trec_eval_on_the_cut_run(nfcorpus):
    run = _with_ties((BM25() % 100)(nfcorpus))
    ours = evaluate(run, nfcorpus.qrels, ["mrr@10", "mrr"])
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
    assert r.p_value < 0.01


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
