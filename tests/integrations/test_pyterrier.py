"""PyTerrier both ways: a rerank_lab cascade in pt.Experiment, PyTerrier transformers in our
pipelines, and a round trip that changes no metric (toy set and a SciFact sample, real models)."""
import pytest

from tests.support import required

pt = required("pyterrier", "pyterrier")

from rerank_lab import BM25, Experiment, evaluate, parse_pipeline  # noqa: E402
from rerank_lab.integrations.pyterrier import (from_pyterrier, frame_to_run, qrels, run_to_frame,  # noqa: E402
                                                to_pyterrier, topics)


def _pt_ndcg(transformer, dataset):
    from ir_measures import nDCG

    table = pt.Experiment([transformer], topics(dataset), qrels(dataset), [nDCG @ 10], names=["x"])
    return float(table.iloc[0]["nDCG@10"])


@pytest.mark.parametrize("which", ["toy", "scifact"])
def test_a_cascade_runs_in_pt_experiment_with_our_metrics(which, toy, scifact):
    dataset = toy if which == "toy" else scifact.sample(15, seed=4)
    cascade = parse_pipeline("bm25%10>>maxsim")
    ours = evaluate(cascade(dataset), dataset.qrels, ["ndcg@10"])["ndcg@10"]
    assert _pt_ndcg(to_pyterrier(cascade, dataset), dataset) == pytest.approx(ours, abs=1e-6)


def test_round_trip_through_pyterrier_keeps_the_run_and_the_metrics(toy):
    stage = parse_pipeline("bm25%5>>ce")
    back = from_pyterrier(to_pyterrier(stage, toy), name="via-pyterrier", first_stage=True)
    exp = Experiment(toy, {"ours": stage, "round trip": back}, baseline="ours").run()
    assert exp.results["round trip"]["ndcg@10"] == pytest.approx(exp.results["ours"]["ndcg@10"], abs=1e-9)
    assert exp.runs["round trip"].rankings.keys() == exp.runs["ours"].rankings.keys()
    for q in toy.queries:
        assert exp.runs["round trip"].doc_ids(q) == exp.runs["ours"].doc_ids(q)


def test_pyterrier_operators_compose_with_our_stages_and_back(toy):
    first = to_pyterrier(BM25() % 6, toy)
    length = pt.apply.doc_score(lambda row: -len(row["text"]))   # a PyTerrier reranker: shortest first
    composed = (first >> length) % 3                              # PyTerrier's own operators
    frame = composed.transform(topics(toy))
    assert frame.groupby("qid").size().max() <= 3
    # the PyTerrier reranker inside a rerank_lab pipeline, with cost accounting
    ours = (BM25() % 6 >> from_pyterrier(length, name="shortest"))(toy)
    for q in toy.queries:
        lengths = [len(toy.corpus[d].full_text) for d in ours.doc_ids(q)]
        assert lengths == sorted(lengths)
    assert ours.costs[-1].stage == "shortest"
    with pytest.raises(ValueError, match="give it candidates"):
        from_pyterrier(length)(toy)


def test_frames_and_runs_convert_both_ways(toy):
    run = (BM25() % 4)(toy)
    frame = run_to_frame(run, toy.queries, toy.corpus)
    assert list(frame.columns) == ["qid", "query", "docno", "text", "score", "rank"]
    assert frame[frame["qid"] == "q1"]["rank"].tolist() == list(range(len(run.doc_ids("q1"))))
    assert frame_to_run(frame).rankings == run.rankings
