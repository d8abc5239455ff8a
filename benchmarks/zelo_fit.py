"""Do the fits recover a known ranking from sparse, noisy pairwise votes?

Draws latent relevance scores for the documents of many synthetic queries, asks a simulated judge
about the pairs of a cycle-based plan (each document in ``k`` comparisons, both orders, each order
a noisy binary vote from the Thurstone model with a position bias the two orders cancel), fits
Bradley-Terry and Thurstone, and prints the mean Spearman correlation with the latent scores;
last line: ``spearman_bt=<x> spearman_thurstone=<x>``.

Usage::

    python benchmarks/zelo_fit.py                  # 200 queries x 30 documents, k = 12
    python benchmarks/zelo_fit.py --k 4 --docs 50
"""
from __future__ import annotations

import argparse
import math

import numpy as np
from scipy.stats import norm, spearmanr

from rerank_lab.train.zelo.fit import fit_scores
from rerank_lab.train.zelo.sampling import cycle_plan


def simulate(latent: np.ndarray, pairs, rng, bias: float = 0.3) -> list[tuple[int, int, float]]:
    """Both orders of each pair: a binary vote each, P(first shown wins) = Phi((s_a - s_b)/sqrt 2 + bias)."""
    votes = []
    for a, b in pairs:
        first = float(rng.random() < norm.cdf((latent[a] - latent[b]) / math.sqrt(2) + bias))
        second = float(rng.random() < norm.cdf((latent[b] - latent[a]) / math.sqrt(2) + bias))
        votes.append((a, b, 0.5 * (first + 1.0 - second)))
    return votes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--docs", type=int, default=30)
    parser.add_argument("--k", type=int, default=12, help="comparisons per document (the judge-call budget)")
    parser.add_argument("--spread", type=float, default=2.0, help="sd of the latent scores (judge noise is 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rho = {"bradley-terry": [], "thurstone": []}
    comparisons = 0
    for q in range(args.queries):
        latent = rng.normal(0.0, args.spread, args.docs)
        pairs = cycle_plan(args.docs, args.k, seed=args.seed * 100_000 + q)
        comparisons += len(pairs)
        votes = simulate(latent, pairs, rng)
        for model in rho:
            rho[model].append(spearmanr(latent, fit_scores(args.docs, votes, model).scores).statistic)
    print(f"{args.queries} queries x {args.docs} documents, k={args.k}: {comparisons / args.queries:.0f} comparisons "
          f"per query ({2 * comparisons / args.queries:.0f} judge calls with both orders) against "
          f"{args.docs * (args.docs - 1) // 2} for all pairs")
    for model, values in rho.items():
        print(f"{model:>14}: Spearman with the latent scores {np.mean(values):.4f} (min {np.min(values):.4f})")
    print(f"spearman_bt={np.mean(rho['bradley-terry']):.4f} spearman_thurstone={np.mean(rho['thurstone']):.4f}")


if __name__ == "__main__":
    main()
