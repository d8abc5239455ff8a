import json

import pytest

from rerank_lab import BM25, Experiment, Interpolate, Rerank, Run
from rerank_lab.experiment import best_under_budget, depth_sweep
from rerank_lab.plots import pareto_frontier, pareto_plot

from test_pipeline import Recorder


def test_shared_prefix_runs_once_and_table_has_significance_and_cost(scifact, tmp_path):
    ds = scifact.sample(n_queries=12, seed=5)
    bm25, overlap = BM25(), Recorder("overlap")
    calls = []
    original = bm25.search
    bm25.search = lambda *a, **k: calls.append(1) or original(*a, **k)
    exp = Experiment(ds, {"bm25": bm25 % 100, "bm25>>overlap": bm25 % 100 >> overlap,
                          "bm25>>overlap%5": bm25 % 100 >> overlap % 5}, baseline="bm25")
    assert len(calls) == 1 and overlap.seen == [100] * 12  # bm25%100 and the rerank computed once
    rows = {r["name"]: r for r in exp.table()}
    assert rows["bm25"]["p_holm"] is None and 0 <= rows["bm25>>overlap"]["p_holm"] <= 1
    assert rows["bm25>>overlap"]["items_scored"] == rows["bm25"]["items_scored"] + 1200
    assert rows["bm25>>overlap"]["median_ms"] >= rows["bm25"]["median_ms"]

    exp.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["dataset"]["corpus_fingerprint"] == ds.fingerprint
    assert manifest["pipelines"]["bm25>>overlap"]["stages"][0]["params"]["k1"] == 0.9
    saved = Run.read_trec(tmp_path / manifest["pipelines"]["bm25>>overlap%5"]["run"])
    assert saved.rankings == exp.runs["bm25>>overlap%5"].rankings


def test_unknown_baseline():
    from rerank_lab import load_dataset

    with pytest.raises(ValueError, match="baseline 'x' is not one of"):
        Experiment(load_dataset("toy"), ["bm25"], baseline="x")


def test_depth_sweep_sees_each_depth(scifact):
    ds = scifact.sample(n_queries=4, seed=2)
    rec = Recorder("overlap")
    exp = depth_sweep(ds, BM25(), rec, depths=(5, 20))
    assert sorted(rec.seen) == [5] * 4 + [20] * 4
    assert set(exp.results) == {"overlap@5", "overlap@20"}


def test_interpolation_endpoints(toy):
    rec = Recorder("overlap")
    first = (BM25() % 6)(toy)
    alone = Rerank(rec).transform(toy.queries, toy.corpus, first)
    only_new = Interpolate(rec, alpha=1.0).transform(toy.queries, toy.corpus, first)
    only_old = Interpolate(rec, alpha=0.0).transform(toy.queries, toy.corpus, first)
    for q in toy.queries:
        assert only_new.doc_ids(q) == alone.doc_ids(q)
        assert only_old.doc_ids(q) == first.doc_ids(q)
    with pytest.raises(ValueError, match="alpha"):
        Interpolate(rec, alpha=2)


def test_pareto_and_budget(tmp_path):
    points = [(1.0, 0.5), (2.0, 0.6), (3.0, 0.55), (10.0, 0.7)]
    assert pareto_frontier(points) == [0, 1, 3]
    rows = [{"name": str(i), "ndcg@10": q, "median_ms": c, "p95_ms": 2 * c} for i, (c, q) in enumerate(points)]
    assert best_under_budget(rows, 6.0)["name"] == "1"  # p95 = 2, 4, 6 fit; 0.6 is best and best_under_budget(rows, 1.0) is None
    pareto_plot(rows, path=tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
