"""Experiments: shared prefixes once, significance, the reranking-hurt alarm, sweeps, budgets."""
import json
import warnings

import pytest

from rerank_lab import BM25, Experiment, FixedRun, Rerank, Run
from rerank_lab.analysis.experiment import RerankingHurt
from rerank_lab.analysis.prefix import planned_items
from rerank_lab.analysis.sweep import best_under_budget, depth_sweep, sweep
from rerank_lab.analysis.plots import cost_quality_bars, lift_chart, pareto_frontier, pareto_plot
from tests.support import Recorder


def test_shared_prefix_runs_once_and_table_has_significance_and_cost(scifact, tmp_path):
    ds = scifact.sample(n_queries=12, seed=5)
    bm25, overlap = BM25(), Recorder("overlap")
    calls = []
    original = BM25.search
    BM25.search = lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    try:
        exp = Experiment(ds, {"bm25": bm25 % 100, "bm25>>overlap": bm25 % 100 >> overlap,
                              "bm25>>overlap%5": bm25 % 100 >> overlap % 5}, baseline="bm25")
        assert calls == [] and overlap.seen == []  # declaring an experiment runs nothing
        exp.run()
    finally:
        BM25.search = original
    assert len(calls) == 1 and overlap.seen == [100] * 12  # bm25%100 and the rerank computed once
    rows = {r["name"]: r for r in exp.table()}
    assert rows["bm25"]["p_holm"] is None and 0 <= rows["bm25>>overlap"]["p_holm"] <= 1
    assert rows["bm25>>overlap"]["delta_ndcg@10"] == pytest.approx(
        exp.results["bm25>>overlap"]["ndcg@10"] - exp.results["bm25"]["ndcg@10"], abs=1e-4)
    assert rows["bm25>>overlap"]["items_scored"] == rows["bm25"]["items_scored"] + 1200
    assert rows["bm25>>overlap"]["model_median_ms"] >= rows["bm25"]["model_median_ms"]
    assert "wall_median_ms" in exp.table(clock="wall")[0] and "judged@10" in rows["bm25"]

    exp.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["dataset"]["corpus_fingerprint"] == ds.fingerprint and manifest["machine"]["cpu"]
    assert manifest["pipelines"]["bm25>>overlap"]["stages"][0]["params"]["k1"] == 0.9
    saved = Run.read_trec(tmp_path / manifest["pipelines"]["bm25>>overlap%5"]["run"])
    assert saved.rankings == exp.runs["bm25>>overlap%5"].rankings


def test_progress_total_matches_the_work_on_a_fixed_run(scifact):
    ds = scifact.sample(n_queries=6, seed=3)
    candidates = FixedRun((BM25() % 20)(ds), "bm25%20")
    a, b, c = Recorder("a"), Recorder("b"), Recorder("c")
    stages = {"fixed": candidates, "a": candidates >> a, "b": candidates >> b % 5 >> c}  # b scores 20, keeps 5
    Experiment(ds, stages, progress=False).run()
    assert planned_items(stages, len(ds.queries)) == sum(a.seen + b.seen + c.seen) == 6 * (20 + 20 + 5)


def test_the_job_bar_names_the_stage_that_is_running(scifact, monkeypatch, capsys):
    monkeypatch.setenv("RERANK_LAB_PROGRESS", "text")
    ds = scifact.sample(n_queries=4, seed=3)
    candidates = FixedRun((BM25() % 10)(ds), "bm25%10")
    Experiment(ds, {"fixed": candidates, "scored": candidates >> Recorder("overlap")}).run()
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any(line.startswith(f"overlap: {ds.name}: 2 pipelines: ") for line in lines)  # while it scores
    assert lines[-1].startswith(f"{ds.name}: 2 pipelines: 100%")  # the job's own name once it is done


def test_unknown_baseline(toy):
    with pytest.raises(ValueError, match="baseline 'x' is not one of"):
        Experiment(toy, ["bm25"], baseline="x")


def test_alarm_when_a_reranker_reverses_its_input_and_not_when_it_keeps_it(scifact):
    ds = scifact.sample(n_queries=40, seed=11)
    first = BM25() % 20
    reverse = Rerank(lambda q, docs: list(range(len(docs))), label="reverse")   # puts the first stage's last first
    keep = Rerank(lambda q, docs: list(range(len(docs), 0, -1)), label="keep")   # the same order
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exp = Experiment(ds, {"bm25": first, "bm25>>reverse": first >> reverse, "bm25>>keep": first >> keep}).run()
    assert set(exp.hurt()) == {"bm25>>reverse"}
    alarms = [w for w in caught if issubclass(w.category, RerankingHurt)]
    assert len(alarms) == 1 and "scifact" in str(alarms[0].message) and "bm25>>reverse" in str(alarms[0].message)
    rows = {r["name"]: r for r in exp.table()}
    assert rows["bm25>>reverse"]["hurt"] and not rows["bm25>>keep"]["hurt"] and "hurt" not in rows["bm25"]
    assert rows["bm25>>keep"]["vs_input_ndcg@10"] == 0.0
    assert "**⚠ hurt**" in exp.markdown() and exp.markdown().count("⚠") == 1
    figure = lift_chart({r["name"]: r["ndcg@10"] for r in exp.table()}, hurt=exp.hurt())
    hatched = [bar for bar in figure.axes[0].patches if bar.get_hatch()]
    assert len(hatched) == 1


def test_depth_sweep_sees_each_depth(scifact):
    ds = scifact.sample(n_queries=4, seed=2)
    rec = Recorder("overlap")
    exp = depth_sweep(ds, BM25(), rec, depths=(5, 20)).run()
    assert sorted(rec.seen) == [5] * 4 + [20] * 4
    assert set(exp.results) == {"bm25", "overlap@5", "overlap@20"}


def test_sweep_marks_peak_and_a_fall(scifact):
    ds = scifact.sample(n_queries=30, seed=3)

    def noisy_tail(query, documents):  # keeps the head's order, then lifts deep candidates above it
        return [(-i if i < 10 else 100 - i) for i in range(len(documents))]

    result = sweep(ds, BM25() % 100 >> noisy_tail, depths=(5, 10, 50, 100))
    rows = {r["depth"]: r for r in result.rows}
    assert rows[10]["ndcg@10"] == pytest.approx(result.first_stage, abs=1e-4)  # the head keeps its order
    assert rows[5]["ndcg@10"] <= rows[10]["ndcg@10"]  # a top-5 cut can only lose nDCG@10
    assert result.peak_depth == 10 and result.peaks_and_falls  # pushing deep documents up hurts
    assert all("model_seconds_per_query" in r for r in result.rows)
    assert result.depth_90 <= result.peak_depth


def test_pareto_and_budget(tmp_path):
    points = [(1.0, 0.5), (2.0, 0.6), (3.0, 0.55), (10.0, 0.7)]
    assert pareto_frontier(points) == [0, 1, 3]
    rows = [{"name": str(i), "ndcg@10": q, "model_median_ms": c, "model_p95_ms": 2 * c} for i, (c, q) in enumerate(points)]
    assert best_under_budget(rows, 6.0)["name"] == "1"  # model p95 = 2, 4, 6 fit; 0.6 is the best of them
    assert best_under_budget(rows, 1.0) is None
    figure = pareto_plot(rows, path=tmp_path / "p.png", cpu="test CPU")
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert "model latency" in figure.axes[0].get_xlabel() and "test CPU" in figure.axes[0].get_xlabel()


def test_cost_bars_go_logarithmic_only_when_costs_span_orders_of_magnitude():
    bars = lambda *costs: [{"method": m, "nDCG@10": 0.5, "model s/query": c} for m, c in zip("ab", costs)]
    close, far = bars(34.0, 123.0), bars(0.05, 123.0)
    linear, logarithmic = cost_quality_bars(close, baseline=0.55).axes[1], cost_quality_bars(far).axes[1]
    assert linear.get_xscale() == "linear" and logarithmic.get_xscale() == "log"
    assert [t.get_text() for t in linear.texts] == ["34", "123"]  # each bar says its cost
