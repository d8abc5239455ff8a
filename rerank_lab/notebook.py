"""Helpers the notebooks share: smoke mode, dataset sizing, and small display tables.

``RERANK_LAB_SMOKE=1`` (set by tests/test_notebooks.py in CI) makes every notebook run on
a few queries over a cut-down corpus (their judged documents plus random distractors),
so the whole story executes in seconds while the committed outputs come from full runs.

Usage::

    from rerank_lab.notebook import SMOKE, notebook_dataset, ranking_table
    ds = notebook_dataset("scifact")          # full test split, or a smoke-sized sample
    ranking_table(run, ds, "q1")              # rank, document, title, score, judged grade
"""
from __future__ import annotations

import os

from .core.data import Dataset
from .core.run import Run
from .data import load_dataset

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


def ranking_table(run: Run, dataset: Dataset, query_id: str, k: int = 10, score_name: str = "score"):
    """One query's top ``k`` as a DataFrame: rank, document id, title (or text start), score, grade."""
    import pandas as pd

    judged = dataset.qrels.get(query_id, {})
    rows = []
    for rank, (doc_id, score) in enumerate(run[query_id][:k], start=1):
        doc = dataset.corpus[doc_id]
        rows.append({"rank": rank, "document": doc_id, "title": doc.title or doc.text[:60],
                     score_name: round(score, 4), "grade": judged.get(doc_id, "-")})
    return pd.DataFrame(rows).set_index("rank")
