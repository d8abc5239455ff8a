"""The command line: outputs, conventions, honest cost, and what bad input and damaged caches do."""
import json
import os

import pytest

from rerank_lab.cli import main


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_evaluate_json_has_metrics_conventions_and_both_clocks(capsys):
    assert main(["evaluate", "toy", "bm25", "--json"]) == 0
    record = _json(capsys)
    for key in ("dataset", "pipeline", "split", "queries", "ndcg@10", "recall@100", "judged@10", "empty_rankings",
                "seconds", "model_seconds", "cpu", "stages"):
        assert key in record
    assert record["queries"] == 5 and 0 < record["ndcg@10"] <= 1
    assert {"seconds", "model_seconds", "model_median_query_seconds"} <= set(record["stages"][0])


def test_empty_rankings_convention_on_nfcorpus(capsys, tmp_path):
    import pytrec_eval

    from rerank_lab import Run, load_dataset

    saved = tmp_path / "bm25.trec"
    assert main(["evaluate", "nfcorpus", "bm25", "--json", "--save-run", str(saved)]) == 0
    zero = _json(capsys)
    assert main(["evaluate", "nfcorpus", "bm25", "--json", "--empty-rankings", "skip"]) == 0
    skip = _json(capsys)
    assert zero["empty_rankings"] == skip["empty_rankings"] == 15 and "judged@10" in zero
    assert zero["queries"] == skip["queries"] + 15 and zero["ndcg@10"] < skip["ndcg@10"]
    qrels = load_dataset("nfcorpus").qrels
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(Run.read_trec(saved).to_dict())
    mean = sum(v["ndcg_cut_10"] for v in theirs.values()) / len(theirs)
    assert skip["ndcg@10"] == pytest.approx(mean, abs=5e-4)


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_max_queries_is_refused_with_a_clear_message(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "toy", "bm25", "--max-queries", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--max-queries" in err and ("positive" in err or "whole number" in err) and "Traceback" not in err


def test_bad_input_gives_clear_error(capsys):
    assert main(["evaluate", "toy", "bm25>>nope"]) == 2
    assert "unknown stage 'nope'" in capsys.readouterr().err
    assert main(["evaluate", "toy", "bm25", "--split", "dev"]) == 2
    assert "no 'dev' split" in capsys.readouterr().err


def test_a_cached_rerun_reports_the_same_model_latency_and_far_less_wall_time(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))  # cold means cold: no scores from earlier tests
    assert main(["evaluate", "toy", "bm25>>ce", "--json"]) == 0
    cold = _json(capsys)["stages"][-1]
    assert main(["evaluate", "toy", "bm25>>ce", "--json"]) == 0
    warm = _json(capsys)["stages"][-1]
    assert warm["cache_hits"] == cold["items_scored"] and cold.get("cache_hits", 0) == 0
    assert cold["model_seconds"] / 1.5 <= warm["model_seconds"] <= cold["model_seconds"] * 1.5
    assert warm["seconds"] < cold["seconds"] / 2


def test_a_damaged_score_cache_is_moved_aside_and_recomputed(capsys):
    from rerank_lab.components.stores import KeyValueStore, cache_dir

    assert main(["evaluate", "toy", "bm25>>ce", "--json"]) == 0
    first = _json(capsys)
    store = cache_dir("scores") / "store.sqlite"
    for opened in KeyValueStore._open.values():
        opened.close_connection()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{store}{suffix}"):
            os.remove(f"{store}{suffix}")
    store.write_bytes(b"database disk image is malformed" * 64)
    assert main(["evaluate", "toy", "bm25>>ce", "--json"]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert "damaged cache" in captured.err and "Traceback" not in captured.err
    assert again["ndcg@10"] == first["ndcg@10"]  # recomputed, not poisoned
    assert any(p.name.startswith("store.sqlite.damaged-") for p in store.parent.iterdir())


def test_lift_writes_chart_table_and_runs_with_normal_permissions(tmp_path, capsys):
    assert main(["lift", "toy", "--pipelines", "bm25", "bm25%3", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "lift.png").stat().st_size > 1000
    assert "| bm25 |" in (tmp_path / "results.md").read_text()
    manifest = json.loads((tmp_path / "toy" / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "toy" and (tmp_path / "toy" / "runs" / "bm25.trec").exists()
    umask = os.umask(0)
    os.umask(umask)
    for path in [tmp_path / "lift.png", tmp_path / "results.md", tmp_path / "toy" / "manifest.json",
                 tmp_path / "toy" / "runs" / "bm25.trec"]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    assert "plan:" in capsys.readouterr().err


def test_sweep_json_has_a_row_per_depth(capsys, tmp_path):
    assert main(["sweep", "toy", "bm25>>maxsim", "--depths", "2", "4", "8", "--json", "--out", str(tmp_path)]) == 0
    record = _json(capsys)
    assert [r["depth"] for r in record["rows"]] == [2, 4, 8]
    assert all({"ndcg@10", "model_seconds_per_query", "peak"} <= set(r) for r in record["rows"])
    assert sum(r["peak"] for r in record["rows"]) == 1 and os.path.exists(record["plot"])


def test_the_main_job_draws_the_cross_encoder_and_notebook_01_every_lab_reranker():
    from rerank_lab.cli import ALL_LIFT_RERANKERS, lift_pipelines

    assert list(lift_pipelines()) == ["bm25", "dense", "hybrid", "hybrid>>ce"]
    assert list(lift_pipelines(rerankers=ALL_LIFT_RERANKERS))[3:] == ["hybrid>>maxsim", "hybrid>>colbert", "hybrid>>ce"]
    with pytest.raises(SystemExit, match="not both"):
        main(["lift", "toy", "--pipelines", "bm25", "--rerankers", "ce"])
