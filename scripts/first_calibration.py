"""Why FIRST is calibrated by default: raw against contextually calibrated FIRST on SciFact *train*.

A tuning split only (never test): BM25 top 20, the offline default LLM, one window per query.
Prints the Experiment table (BM25's own order is the baseline). The numbers in
``rerank_lab/rerankers/first.py`` come from ``--queries 8``: about 15 minutes on 2 CPU cores cold
(LLM calls are cached, so a rerun is quick).

Usage::

    RERANK_LAB_DATA=../shared/beir python scripts/first_calibration.py --queries 8
"""
from __future__ import annotations

import argparse

from rerank_lab import BM25, Experiment, load_dataset
from rerank_lab.rerankers.first import First


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dataset = load_dataset("scifact", split="train").sample(args.queries, seed=args.seed)
    candidates = BM25() % 20
    exp = Experiment(dataset, {"bm25%20": candidates, "first (raw)": candidates >> First(calibrate=False),
                               "first (calibrated)": candidates >> First(calibrate=True)}, baseline="bm25%20").run()
    print(exp.markdown())


if __name__ == "__main__":
    main()
