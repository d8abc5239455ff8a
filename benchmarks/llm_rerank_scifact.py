"""Listwise vs FIRST vs pointwise LLM reranking of hybrid top-k on SciFact test queries.

Resumable (rerank_lab.llm.experiment): kill it and start it again, it continues; the
notebook 04 reads the same records. Prints nDCG@10 and per-query cost as JSON.

Usage::

    RERANK_LAB_DATA=/work/shared/beir nice -n 5 .venv/bin/python benchmarks/llm_rerank_scifact.py \
        --model qwen2.5-coder-1.5b-instruct-q4_k_m --queries 30 --depth 20 --words 60
"""
from __future__ import annotations

import argparse
import json

from rerank_lab import evaluate
from rerank_lab.first_stage import hybrid
from rerank_lab.llm.backends import DEFAULT_GGUF, load_backend
from rerank_lab.llm.experiment import cost_table, rerank_resumable
from rerank_lab.notebook import notebook_dataset
from rerank_lab.rerankers.listwise import FirstReranker, ListwiseReranker
from rerank_lab.rerankers.llm_pointwise import PointwiseLLMReranker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_GGUF)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--words", type=int, default=60, help="passage truncation (whitespace words)")
    parser.add_argument("--methods", default="first,listwise,llm-pointwise")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop starting new queries after this")
    args = parser.parse_args()

    dataset = notebook_dataset("scifact", max_queries=args.queries)
    candidates = (hybrid() % args.depth)(dataset)
    llm = load_backend(args.model)
    common = dict(backend=llm, max_passage_words=args.words)
    window = dict(window=args.window, stride=args.stride)
    every = {"listwise": ListwiseReranker(**common, **window), "first": FirstReranker(**common, **window),
             "llm-pointwise": PointwiseLLMReranker(**common)}
    rerankers = {m: every[m] for m in args.methods.split(",")}
    runs = rerank_resumable(rerankers, dataset, candidates, max_seconds=args.max_seconds)
    queries = next(iter(runs.values())).rankings.keys()
    base = candidates.subset(queries)
    report = {"model": args.model, "queries": len(queries), "depth": args.depth, "words": args.words,
              "ndcg@10": {"hybrid": round(evaluate(base, dataset.qrels, ["ndcg@10"])["ndcg@10"], 4),
                          **{m: round(evaluate(r, dataset.qrels, ["ndcg@10"])["ndcg@10"], 4) for m, r in runs.items()}},
              "cost": cost_table(runs)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
