"""One tuner for every trained family: how to use a reranker, chosen on train/dev splits only.

For each scorer setting (e.g. truncation or maxP passages), each rerank depth and each
interpolation weight ``alpha``, it measures mean nDCG@10 over the tuning splits (SciFact's
held-out train queries, NFCorpus dev; never test) and the model cost per query (seconds with
an empty cache, and items scored). It then picks the **cheapest** setting whose tuning mean is
within ``tolerance`` of the best one, because settings closer than that are not
distinguishable on these queries (the record holds the paired standard error of each
difference to show it), and a user pays for every extra pair on every query.
Everything it tried goes into ``tuning.json`` beside the weights (the frontier notebook 02 plots).

Usage::

    python -m rerank_lab.train.tune ce              # re-tune the lab cross-encoder's settings
    python -m rerank_lab.train.tune colbert
    python -m rerank_lab.train.tune fusion          # zero-shot score fusion's weights and depth
    python -m rerank_lab.train.tune ce-fusion       # the lab cross-encoder fused, on clean validation
    tune(make, [{"passages": None}, {"passages": "maxp"}], tuning_sets(info), depths=(10, 20, 50))
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..analysis.evaluate import evaluate
from ..components.lab_weights import LAB_CE_DIR, LAB_CE_FUSION_DIR, LAB_COLBERT_DIR, LAB_FUSION_DIR, TUNING_FILE
from ..components.provenance import add_provenance, training_data
from ..core.files import atomic_write_text
from ..core.interpolate import interpolate_runs
from ..core.run import Run
from ..core.stage import Rerank, Scorer
from ..data import Dataset, load_dataset

ALPHAS = tuple(round(a, 2) for a in np.arange(0.0, 1.0001, 0.05))
DEPTHS = (10, 20, 50, 100)
# Two settings whose tuning means differ by less than this are treated as equally good: it is
# the spread bf16 rounding alone gives between CPUs on these splits, and about one paired standard
# error of such differences over the tuning queries (recorded per row as "se_vs_best": 0.0013-0.0029
# on the committed models' frontiers).
TOLERANCE = 0.002


@dataclass
class TuningSet:
    """One tuning split: its dataset (restricted to the tuning queries) and the first stage's candidates."""

    name: str
    split: str
    dataset: Dataset
    candidates: Run


def tuning_sets(tuning: Mapping[str, Mapping], first_stage: str = "hybrid", candidates: int = 100,
                max_queries: int | None = None, seed: int = 0) -> list[TuningSet]:
    """``tuning``: ``{dataset: {"split": ..., "query_ids": [...]}}`` as the training records store it."""
    from ..specs import first_stage_by_name

    sets = []
    for name, info in tuning.items():
        qids = list(info["query_ids"])
        if not qids:
            continue
        if info["split"] == "test" and name != "toy":
            raise ValueError(f"refusing to tune on the test split of {name!r}")
        if max_queries:
            qids = sorted(random.Random(seed).sample(qids, min(max_queries, len(qids))))
        dataset = load_dataset(name, split=info["split"]).restrict(qids)
        sets.append(TuningSet(name, info["split"], dataset, (first_stage_by_name(first_stage) % candidates)(dataset)))
    if not sets:
        raise ValueError("no tuning queries: the training record lists none (a toy-set model?)")
    return sets


def _ndcg(run: Run, dataset: Dataset) -> dict[str, float]:
    return evaluate(run, dataset.qrels, ["ndcg@10"]).per_query["ndcg@10"]


def tune(make_scorer: Callable[[dict], Scorer], settings_grid: Sequence[dict], sets: Sequence[TuningSet],
         depths: Sequence[int] = DEPTHS, alphas: Sequence[float] = ALPHAS, tolerance: float = TOLERANCE,
         progress: bool = True) -> dict:
    """Measure every (setting, depth, alpha) and choose; returns the ``tuning.json`` record."""
    rows = []
    for settings in settings_grid:
        scorer = make_scorer(dict(settings))
        for tset in sets:
            deepest = tset.candidates.top(max(depths))
            t0 = time.perf_counter()
            pure = Rerank(scorer, progress=progress).transform(tset.dataset.queries, tset.dataset.corpus, deepest)
            cost = pure.costs[-1]
            per_item = float(cost.model_seconds or 0.0) / max(cost.items_scored, 1)
            if progress:
                print(f"[tune] {settings} {tset.name}/{tset.split}: {cost.items_scored} items, "
                      f"{per_item * 1000:.1f} ms/item model, {time.perf_counter() - t0:.0f} s wall", flush=True)
            for depth in depths:
                head = Run({q: [(d, s) for d, s in r if d in set(tset.candidates.doc_ids(q, depth))]
                            for q, r in pure.rankings.items()})
                for alpha in alphas:
                    mixed = interpolate_runs(tset.candidates, head, float(alpha))
                    rows.append({"settings": dict(settings), "rerank_depth": depth, "alpha": float(alpha),
                                 "set": f"{tset.name}/{tset.split}", "per_query": _ndcg(mixed, tset.dataset),
                                 "model_seconds_per_query": per_item * min(depth, _mean_len(tset.candidates, depth))})
    return choose(rows, tolerance, [f"{s.name}/{s.split}" for s in sets])


def _mean_len(run: Run, depth: int) -> float:
    return float(np.mean([min(len(r), depth) for r in run.rankings.values()])) if run.rankings else 0.0


def choose(rows: list[dict], tolerance: float, set_names: list[str]) -> dict:
    """Collapse per-set rows into one row per (setting, depth) at its best alpha (mean over sets
    of each set's mean nDCG@10), then pick the cheapest row within ``tolerance`` of the best."""
    grouped: dict[tuple, dict] = {}
    for r in rows:
        key = (json.dumps(r["settings"], sort_keys=True), r["rerank_depth"], r["alpha"])
        g = grouped.setdefault(key, {"settings": r["settings"], "rerank_depth": r["rerank_depth"], "alpha": r["alpha"],
                                     "per_set": {}, "per_query": {}, "model_seconds_per_query": 0.0})
        g["per_set"][r["set"]] = float(np.mean(list(r["per_query"].values())))
        g["per_query"].update({f"{r['set']}:{q}": v for q, v in r["per_query"].items()})
        g["model_seconds_per_query"] += r["model_seconds_per_query"] / len(set_names)
    for g in grouped.values():
        g["mean"] = float(np.mean([g["per_set"][s] for s in set_names]))
    best_alpha: dict[tuple, dict] = {}
    for g in grouped.values():
        key = (json.dumps(g["settings"], sort_keys=True), g["rerank_depth"])
        if key not in best_alpha or (round(g["mean"], 6), -abs(g["alpha"] - 0.5)) > \
                (round(best_alpha[key]["mean"], 6), -abs(best_alpha[key]["alpha"] - 0.5)):
            best_alpha[key] = g
    frontier = sorted(best_alpha.values(), key=lambda g: g["model_seconds_per_query"])
    best = max(frontier, key=lambda g: g["mean"])
    for g in frontier:  # paired standard error of (row - best) over all tuning queries
        diff = np.array([g["per_query"][q] - best["per_query"][q] for q in best["per_query"]])
        g["se_vs_best"] = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    chosen = next(g for g in frontier if g["mean"] >= best["mean"] - tolerance)

    def public(g):
        return {"settings": g["settings"], "rerank_depth": g["rerank_depth"], "alpha": g["alpha"],
                "mean": round(g["mean"], 4), "per_set": {k: round(v, 4) for k, v in g["per_set"].items()},
                "model_seconds_per_query": round(g["model_seconds_per_query"], 4),
                "se_vs_best": round(g["se_vs_best"], 4)}

    alpha_curves = {}
    for g in grouped.values():
        if g["settings"] == chosen["settings"] and g["rerank_depth"] == chosen["rerank_depth"]:
            for s, v in g["per_set"].items():
                alpha_curves.setdefault(s, {})[str(g["alpha"])] = round(v, 4)
    return {"chosen": {"alpha": chosen["alpha"], "rerank_depth": chosen["rerank_depth"],
                       "settings": dict(chosen["settings"])},
            "rule": f"cheapest setting (model seconds per query) whose mean nDCG@10 over the tuning splits is within "
                    f"{tolerance} of the best",
            "tolerance": tolerance, "tuned_on": set_names, "best": public(best), "chosen_row": public(chosen),
            "frontier": [public(g) for g in frontier], "alpha_curves_of_chosen": alpha_curves}


def write_tuning(folder: str | os.PathLike, record: dict, extra: Mapping | None = None,
                 sets: Sequence[TuningSet] = ()) -> Path:
    """Write ``tuning.json`` and add what the tuner read (``sets``) to the folder's provenance."""
    record = {**record, **(extra or {}), "created": time.strftime("%Y-%m-%d")}
    if sets:
        add_provenance(folder, [training_data(s.name, s.split, "tune", sorted(s.dataset.queries), s.dataset.qrels)
                                for s in sets])
    return atomic_write_text(Path(folder) / TUNING_FILE, json.dumps(record, indent=1) + "\n")


# -- the committed models -------------------------------------------------------------------------
def tune_lab_cross_encoder(folder: str | os.PathLike = LAB_CE_DIR, depths: Sequence[int] = (10, 20, 50),
                           passages: Sequence[str | None] = (None, "maxp"), max_queries: int | None = None,
                           write: bool = True) -> dict:
    """Re-tune the lab cross-encoder (document handling x depth x alpha) on its recorded tuning queries."""
    from ..rerankers.cross_encoder import cross_encoder

    folder = Path(folder)
    meta = json.loads((folder / "training.json").read_text())
    max_length = int(meta["config"]["max_length"])
    sets = tuning_sets(meta["tuning"], max_queries=max_queries)
    record = tune(lambda s: cross_encoder(str(folder), mode="fast", max_length=max_length, name="ce", **s),
                  [{"passages": p} for p in passages], sets, depths)
    record["chosen"]["settings"].update(mode="fast", max_length=max_length)
    if write:
        write_tuning(folder, record, {"family": "cross_encoder", "first_stage": "hybrid", "candidates": 100}, sets)
    return record


def tune_lab_colbert(folder: str | os.PathLike = LAB_COLBERT_DIR, depths: Sequence[int] = (10, 20, 50, 100),
                     max_queries: int | None = 200, write: bool = True) -> dict:
    """Re-tune the lab ColBERT (depth x alpha) on its recorded held-out queries."""
    from ..rerankers.colbert import ColBERT

    folder = Path(folder)
    meta = json.loads((folder / "rerank_lab_training.json").read_text())
    tuning = {name: d["tuning"] for name, d in meta.get("data", {}).items() if d.get("tuning", {}).get("query_ids")}
    sets = tuning_sets(tuning, max_queries=max_queries)
    record = tune(lambda s: ColBERT(str(folder), **s), [{}], sets, depths)
    if write:
        write_tuning(folder, record, {"family": "colbert", "first_stage": "hybrid", "candidates": 100}, sets)
    return record


FUSION_GRID = tuple((1.0, bm25, dense) for bm25 in (0.0, 0.25, 0.5, 0.75, 1.0) for dense in (0.0, 0.25, 0.5, 0.75, 1.0))
#: the same, then the cross-encoder's weight (0: fusion without it, so the tuner may leave it out)
CE_FUSION_GRID = tuple((*w, ce) for w in FUSION_GRID for ce in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0))


def tune_fusion(sets: Sequence[TuningSet], depths: Sequence[int] = (20, 100),
                grid: Sequence[tuple[float, ...]] = FUSION_GRID, make: Callable | None = None) -> dict:
    """Score fusion's weights and depth: the best mean nDCG@10 over the tuning splits (every setting
    costs the same: the inputs score each candidate once), the record in the shape :func:`choose`
    writes. ``make(weights=, rerank_depth=)`` builds the :class:`~rerank_lab.core.interpolate.Fuse`
    (default: zero-shot fusion)."""
    from ..rerankers.fusion import zero_shot_fusion

    make = make or zero_shot_fusion
    rows = []
    for depth in depths:
        fuse = make(weights=grid[0], rerank_depth=depth)
        for tset in sets:
            signals = fuse.signals(tset.dataset.queries, tset.dataset.corpus, tset.candidates)
            for weights in grid:
                run = fuse.combine(tset.candidates, signals, weights)
                rows.append({"settings": {"weights": list(weights)}, "rerank_depth": depth, "alpha": 1.0,
                             "set": f"{tset.name}/{tset.split}", "per_query": _ndcg(run, tset.dataset),
                             "model_seconds_per_query": 0.0})
    return choose(rows, 0.0, [f"{s.name}/{s.split}" for s in sets])


def tune_lab_fusion(folder: str | os.PathLike = LAB_FUSION_DIR, datasets: Sequence[str] = ("scifact", "nfcorpus"),
                    write: bool = True) -> dict:
    """Tune the ``"fusion"`` reranker on the lab's tuning splits (SciFact's held-out train queries,
    NFCorpus dev); it reads no other judgment."""
    from .negatives import tuning_queries

    tuning = {}
    for name in datasets:
        ids, split = tuning_queries(name)
        tuning[name] = {"split": split, "query_ids": ids}
    sets = tuning_sets(tuning)
    record = tune_fusion(sets)
    if write:
        Path(folder).mkdir(parents=True, exist_ok=True)
        write_tuning(folder, record, {"family": "fusion", "first_stage": "hybrid", "candidates": 100}, sets)
    return record


def clean_tuning_set(model: str | os.PathLike = LAB_CE_DIR, candidates: int = 100) -> TuningSet:
    """SciFact's held-out train queries that are clean for ``model`` (none of their relevant
    documents a positive in any judgment it trained on): the only fair place to choose how to use
    a model trained on SciFact. NFCorpus dev is left out: 99% of its relevant documents are train positives."""
    from ..components.provenance import read_provenance
    from ..first_stage import hybrid
    from .negatives import clean_validation

    data = clean_validation(read_provenance(model))
    return TuningSet("scifact", "train", data, (hybrid() % candidates)(data))


def tune_lab_ce_fusion(folder: str | os.PathLike = LAB_CE_FUSION_DIR, depths: Sequence[int] = (20,),
                       write: bool = True) -> dict:
    """Tune ``"ce-fusion"`` (hybrid + BM25 + dense + the lab cross-encoder) on the cross-encoder's
    clean validation queries (:func:`clean_tuning_set`); weight 0 for the cross-encoder is on the grid."""
    from ..rerankers.fusion import lab_ce_fusion

    sets = [clean_tuning_set(LAB_CE_DIR)]
    record = tune_fusion(sets, depths=depths, grid=CE_FUSION_GRID, make=lab_ce_fusion)
    without = [r for r in record["frontier"] if r["settings"]["weights"][-1] == 0.0]
    record["best_without_ce"] = max(without, key=lambda r: r["mean"]) if without else None
    if write:
        Path(folder).mkdir(parents=True, exist_ok=True)
        write_tuning(folder, record, {"family": "fusion", "inputs": ["bm25", "dense", "lab-ce"],
                                      "first_stage": "hybrid", "candidates": 100}, sets)
    return record


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Re-tune how a lab reranker is used (train/dev splits only).")
    parser.add_argument("family", choices=["ce", "colbert", "fusion", "ce-fusion"])
    parser.add_argument("--depths", type=int, nargs="+", default=None)
    parser.add_argument("--max-queries", type=int, default=None, help="tuning queries per split (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="print the record, do not write tuning.json")
    args = parser.parse_args(argv)
    kwargs = {"max_queries": args.max_queries, "write": not args.dry_run}
    if args.depths:
        kwargs["depths"] = tuple(args.depths)
    if args.family == "fusion":
        record = tune_lab_fusion(write=not args.dry_run)
    elif args.family == "ce-fusion":
        record = tune_lab_ce_fusion(write=not args.dry_run)
    else:
        record = tune_lab_cross_encoder(**kwargs) if args.family == "ce" else tune_lab_colbert(**kwargs)
    print(json.dumps({k: record[k] for k in ("chosen", "rule", "best", "chosen_row")}, indent=1))


if __name__ == "__main__":
    main()
