import json

from rerank_lab.cli import main


def test_evaluate_json(capsys):
    assert main(["evaluate", "toy", "bm25", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    for key in ("dataset", "pipeline", "split", "queries", "ndcg@10", "recall@100", "seconds"):
        assert key in record
    assert record["queries"] == 5 and 0 < record["ndcg@10"] <= 1


def test_evaluate_max_queries(capsys, beir_root):
    assert main(["evaluate", "scifact", "bm25", "--max-queries", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["queries"] == 7


def test_bad_input_gives_clear_error(capsys):
    assert main(["evaluate", "toy", "bm25>>nope"]) == 2
    assert "unknown stage 'nope'" in capsys.readouterr().err
    assert main(["evaluate", "toy", "bm25", "--split", "dev"]) == 2
    assert "no 'dev' split" in capsys.readouterr().err


def test_lift_writes_chart_and_table(tmp_path, capsys):
    assert main(["lift", "toy", "--pipelines", "bm25", "bm25%3", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "lift.png").stat().st_size > 1000
    assert "| bm25 |" in (tmp_path / "results.md").read_text()
    manifest = json.loads((tmp_path / "toy" / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "toy" and (tmp_path / "toy" / "runs" / "bm25.trec").exists()
