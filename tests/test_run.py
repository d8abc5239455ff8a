import pytest

from rerank_lab import Run


def test_ties_follow_trec_eval_order():
    run = Run.from_scores({"q": {"a": 1.0, "c": 1.0, "b": 2.0}})
    assert run.doc_ids("q") == ["b", "c", "a"]  # score desc, then doc id desc


def test_trec_round_trip(tmp_path):
    run = Run.from_scores({"q1": {"d1": 1.5, "d2": 0.25}, "q2": {"d3": -1.0}}, name="mine")
    path = run.write_trec(tmp_path / "mine.trec")
    assert path.read_text().splitlines()[0] == "q1 Q0 d1 1 1.5 mine"
    back = Run.read_trec(path)
    assert back.rankings == run.rankings


def test_bad_trec_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.trec"
    path.write_text("q1 Q0 d1 1 1.0 x\nq1 Q0 d2 2 high x\n")
    with pytest.raises(ValueError, match=r"bad.trec:2: score 'high'"):
        Run.read_trec(path)
    path.write_text("q1 d1 1.0\n")
    with pytest.raises(ValueError, match="6 columns"):
        Run.read_trec(path)


def test_top_and_latency():
    run = Run.from_scores({"q": {str(i): float(i) for i in range(10)}})
    assert run.top(3).doc_ids("q") == ["9", "8", "7"]
