import pytest

from rerank_lab import Run, StageCost


def test_ties_follow_trec_eval_order():
    run = Run.from_scores({"q": {"a": 1.0, "c": 1.0, "b": 2.0}})
    assert run.doc_ids("q") == ["b", "c", "a"]  # score desc, then doc id desc


def test_trec_round_trip_and_shareable_mode(tmp_path):
    import os

    run = Run.from_scores({"q1": {"d1": 1.5, "d2": 0.25}, "q2": {"d3": -1.0}}, name="mine")
    path = run.write_trec(tmp_path / "mine.trec")
    assert path.read_text().splitlines()[0] == "q1 Q0 d1 1 1.5 mine"
    assert Run.read_trec(path).rankings == run.rankings
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not the 0600 of a temporary file


def test_bad_trec_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.trec"
    path.write_text("q1 Q0 d1 1 1.0 x\nq1 Q0 d2 2 high x\n")
    with pytest.raises(ValueError, match=r"bad.trec:2: score 'high'"):
        Run.read_trec(path)
    path.write_text("q1 d1 1.0\n")
    with pytest.raises(ValueError, match="6 columns"):
        Run.read_trec(path)
    path.write_text("q1 Q0 d1 1 1.0 x\nq1 Q0 d1 2 0.5 x\n")
    with pytest.raises(ValueError, match="appears twice"):
        Run.read_trec(path)


def test_top_subset_and_latency_on_both_clocks():
    run = Run.from_scores({"q": {str(i): float(i) for i in range(10)}, "r": {"x": 1.0}})
    assert run.top(3).doc_ids("q") == ["9", "8", "7"]
    assert list(run.subset(["r"]).rankings) == ["r"]
    cost = StageCost("ce", seconds=1.0, items_scored=10, per_query_seconds={"q": 0.9, "r": 0.1},
                     model_seconds=5.0, per_query_model_seconds={"q": 4.0, "r": 1.0})
    assert cost.latency(0.5) == pytest.approx(2.5) and cost.latency(0.5, "wall") == pytest.approx(0.5)
    assert cost.latency(1.0, "model") == 4.0
    plain = StageCost("bm25", 0.2, 3, {"q": 0.2})
    assert plain.model_seconds == 0.2 and plain.latency(0.5) == 0.2  # no cache: both clocks agree
    run.costs = [cost, plain]
    assert run.query_seconds("model") == {"q": 4.2, "r": 1.0}
    assert run.total_seconds("wall") == pytest.approx(1.2)
    with pytest.raises(ValueError, match="clock"):
        cost.latency(0.5, "cpu")
