"""Helpers the notebooks share: smoke mode and dataset sizing.

``RERANK_LAB_SMOKE=1`` (set by tests/test_notebooks.py in CI) makes every notebook run on
a few queries over a cut-down corpus (their judged documents plus random distractors),
so the whole story executes in seconds while the committed outputs come from full runs.

Usage::

    from rerank_lab.notebook import SMOKE, notebook_dataset
    ds = notebook_dataset("scifact")          # full test split, or a smoke-sized sample
"""
from __future__ import annotations

import os

from .data import Dataset, load_dataset

SMOKE = os.environ.get("RERANK_LAB_SMOKE", "").lower() not in {"", "0", "false", "no"}
SMOKE_QUERIES = 5
SMOKE_DISTRACTORS = 100


def notebook_dataset(name: str, split: str = "test", max_queries: int | None = None, seed: int = 0) -> Dataset:
    """The dataset a notebook should use: in smoke mode a few queries and a small corpus."""
    dataset = load_dataset(name, split=split)
    if SMOKE:
        return dataset.sample(SMOKE_QUERIES, SMOKE_DISTRACTORS, seed=seed)
    if max_queries is not None:
        return dataset.sample(max_queries, seed=seed)
    return dataset
