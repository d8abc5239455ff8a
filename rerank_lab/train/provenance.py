"""What each lab recipe learned from, as provenance records (``provenance.json`` beside the weights).

A recipe calls :func:`recipe_provenance` with the query ids it trained on and the tuning split it
read; weights made before provenance existed get theirs rebuilt from their training record (the
same query split, recomputed from the recorded seed and hold-out size).

Usage::

    python -m rerank_lab.train.provenance rerank_lab/weights/lab-ce rerank_lab/weights/colbert-minilm
    records = recipe_provenance({"scifact": train_ids}, {"scifact": {"split": "train", "query_ids": held}})
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Mapping, Sequence

from ..components.provenance import PROVENANCE_FILE, training_data, write_provenance
from ..core.provenance import TrainingData
from .negatives import split_queries, train_split


def recipe_provenance(trained: Mapping[str, Sequence[str] | None], tuning: Mapping[str, Mapping] | None = None,
                      labels: bool = True) -> list[TrainingData]:
    """Records for a recipe: ``trained`` maps each dataset to the train query ids used (None: all
    of its train split); ``tuning`` maps a dataset to ``{"split", "query_ids"}`` read to choose
    settings. ``labels=False`` for label-free recipes (pseudo-queries add no positives)."""
    records = []
    for name, query_ids in trained.items():
        record = training_data(name, train_split(name), "train", query_ids)
        records.append(TrainingData(record.dataset, record.split, record.role, record.query_ids, record.qrels_sha256,
                                    labels))
    for name, info in (tuning or {}).items():
        if info.get("query_ids"):
            records.append(training_data(name, info["split"], "tune", info["query_ids"]))
    return records


def rebuilt_provenance(folder: str | os.PathLike) -> list[TrainingData]:
    """The records of committed weights from their training record: the cross-encoder's
    ``training.json`` (datasets, hold-out size, seed, tuning queries) or ColBERT's
    ``rerank_lab_training.json`` (every train query of each dataset: its weights predate the
    document-disjoint hold-out, so the whole split is counted)."""
    folder = Path(folder)
    if (folder / "training.json").exists():
        record = json.loads((folder / "training.json").read_text())
        config = record["config"]
        trained = {}
        for name in config["datasets"]:
            ids, _, _ = split_queries(name, config["holdout_queries"], config["seed"])
            trained[name] = ids
        return recipe_provenance(trained, record.get("tuning", {}))
    if (folder / "rerank_lab_training.json").exists():
        record = json.loads((folder / "rerank_lab_training.json").read_text())
        trained = {name: None for name in record["recipe"]["datasets"]}
        return recipe_provenance(trained, {n: d["tuning"] for n, d in record.get("data", {}).items()})
    raise FileNotFoundError(f"no training record in {folder} (training.json or rerank_lab_training.json): "
                            f"state what the model learned from with trained_on= instead")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write provenance.json for lab weights from their training record.")
    parser.add_argument("folders", nargs="+")
    args = parser.parse_args(argv)
    for folder in args.folders:
        records = rebuilt_provenance(folder)
        write_provenance(folder, records, note="rebuilt from the training record by python -m "
                                               "rerank_lab.train.provenance")
        print(f"{Path(folder) / PROVENANCE_FILE}: " + ", ".join(f"{r.label} ({r.role}, "
              f"{'all' if r.query_ids is None else len(r.query_ids)} queries)" for r in records))


if __name__ == "__main__":
    main()
