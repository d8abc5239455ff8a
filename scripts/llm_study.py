"""The LLM families on the same hybrid candidates (issue 17's study): nDCG@10, LLM calls, tokens and
model seconds per query, written to ``results/llm_study.md``. Every LLM call is cached on disk, so an
interrupted run resumes where it stopped (30 queries × top 20 with the 1.5B took 2.3 h of model time on
2 AVX2 CPU cores; the table records it per method).

Usage::

    python scripts/llm_study.py                      # 30 SciFact test queries, hybrid top 20, the 1.5B
    python scripts/llm_study.py --queries 5 --depth 10 --model qwen2.5-0.5b-instruct-q4_k_m
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rerank_lab import Experiment, FixedRun, hybrid, load_dataset
from rerank_lab.analysis.llm_study import StudySettings, llm_methods
from rerank_lab.core.files import atomic_write_text


def main() -> None:
    defaults = StudySettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--model", default=defaults.model)
    parser.add_argument("--words", type=int, default=defaults.words)
    parser.add_argument("--pair-passes", type=int, default=defaults.pair_passes)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/llm_study.md")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, split="test").sample(args.queries, seed=args.seed)
    candidates = FixedRun((hybrid() % args.depth)(dataset), f"hybrid%{args.depth}")
    settings = StudySettings(model=args.model, window=args.depth, stride=max(args.depth // 2, 1), words=args.words,
                             pair_passes=args.pair_passes)
    pipelines = {"hybrid": candidates, **{n: candidates >> m for n, m in llm_methods(settings).items()}}
    study = Experiment(dataset, pipelines, baseline="hybrid").run()
    columns = ["name", "ndcg@10", "delta_ndcg@10", "p_holm", "llm_calls", "prompt_tokens", "completion_tokens",
               "model_seconds"]
    text = (f"`python {' '.join(sys.argv)}`\n\n"
            f"{args.dataset} test, {len(dataset.queries)} queries (seed {args.seed}), hybrid top {args.depth}, "
            f"{settings}\n\n" + study.markdown(columns))
    atomic_write_text(Path(args.out), text + "\n")
    print(text)


if __name__ == "__main__":
    main()
