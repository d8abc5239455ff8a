"""Index and search time of the first stages on SciFact (test queries), cold and warm cache.

Usage::

    RERANK_LAB_DATA=../shared/beir .venv/bin/python benchmarks/first_stage.py [--dataset scifact] [--skip-dense]

Cold = a fresh RERANK_LAB_CACHE (index built / corpus encoded); warm = a new stage object
loading from the disk cache. Search = all test queries, top 1000, after indexing.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--skip-dense", action="store_true")
    args = parser.parse_args()
    os.environ["RERANK_LAB_CACHE"] = tempfile.mkdtemp(prefix="rerank_lab_bench_")
    warnings.simplefilter("ignore")
    from rerank_lab import BM25, Dense, evaluate, load_dataset

    dataset = load_dataset(args.dataset)
    n_docs, n_queries = len(dataset.corpus), len(dataset.queries)
    print(f"{args.dataset}: {n_docs} documents, {n_queries} test queries")
    stages = [("bm25", BM25, lambda s: s.index(dataset.corpus))]
    if not args.skip_dense:
        stages.append(("dense", Dense, lambda s: s.corpus_embeddings(dataset.corpus)))
    for name, factory, build in stages:
        stage = factory()
        _, cold = timed(lambda: build(stage))
        _, warm = timed(lambda: build(factory()))
        run, search = timed(lambda: stage.retrieve(dataset.queries, dataset.corpus, 1000))
        ndcg = evaluate(run, dataset.qrels, ["ndcg@10"])["ndcg@10"]
        print(f"{name:6s} index cold {cold:8.2f} s ({n_docs / cold:8.1f} docs/s) | warm load {warm:6.2f} s | "
              f"search {search:6.2f} s ({n_queries / search:8.1f} queries/s) | nDCG@10 {ndcg:.4f}")


if __name__ == "__main__":
    main()
