"""How often does the fast cross-encoder keep nDCG@10 within 0.002 of exact on a 100-query run?

``benchmarks/cross_encoder_throughput.py`` checks ``fast`` on one fixed sample of 100 SciFact
test queries, where one top-rank swap of a relevant document moves nDCG@10 by about 0.0037
(1 − 1/log2(3), over 100 queries). That makes its ``fast_ndcg_delta`` a coin with a known bias
rather than a measurement. This script estimates the coin: it scores every query of a split the
lab cross-encoder never trained on (NFCorpus ``dev`` by default; its training data is SciFact and
NFCorpus ``train``) against its top-20 BM25 candidates in ``exact`` and each approximate mode,
then draws many 100-query subsets and reports how many keep |Δ nDCG@10| ≤ 0.002, with the
quantiles of Δ and the Spearman correlation of all scores with exact. The last line is::

    fast_within=<fraction> fast_delta_q05=<x> fast_delta_q95=<x> fast_rho=<x> [int8_within=... ...]

Usage::

    RERANK_LAB_DATA=/work/shared/beir python benchmarks/cross_encoder_fast_fidelity.py \
        [--dataset nfcorpus --split dev --per-query 20 --subset 100 --draws 2000 --no-int8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="nfcorpus")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--per-query", type=int, default=20)
    parser.add_argument("--subset", type=int, default=100, help="queries per simulated run")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--tolerance", type=float, default=0.002)
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args()
    if args.split == "test":
        parser.error("pick a split other than test: this script is for choosing between modes")

    from scipy.stats import spearmanr

    from rerank_lab.data import load_dataset
    from rerank_lab.evaluate import evaluate
    from rerank_lab.first_stage import BM25
    from rerank_lab.rerankers.cross_encoder import LAB_CE_DIR, CrossEncoder
    from rerank_lab.run import Run

    dataset = load_dataset(args.dataset, split=args.split)
    run = (BM25() % args.per_query)(dataset)
    owners = [(q, d) for q in run.rankings for d in run.doc_ids(q)]
    pairs = [(dataset.queries[q].text, dataset.corpus[d].full_text) for q, d in owners]
    modes = ["exact", "fast"] + ([] if args.no_int8 else ["int8"])
    print(f"model={LAB_CE_DIR} {args.dataset}/{args.split}: {len(run)} queries, {len(pairs)} pairs")

    per_query, scores = {}, {}
    for mode in modes:
        t0 = time.perf_counter()
        values = CrossEncoder(LAB_CE_DIR, mode=mode, cache=False).predict(pairs)
        seconds = time.perf_counter() - t0
        scores[mode] = np.asarray(values, dtype=np.float64)
        by_query: dict[str, dict[str, float]] = {}
        for (q, d), s in zip(owners, scores[mode]):
            by_query.setdefault(q, {})[d] = float(s)
        per_query[mode] = evaluate(Run.from_scores(by_query), dataset.qrels, ["ndcg@10"]).per_query["ndcg@10"]
        print(f"{mode:>6}: {len(pairs) / seconds:6.1f} pairs/s  ndcg@10={np.mean(list(per_query[mode].values())):.4f}")

    qids = sorted(per_query["exact"])
    exact = np.array([per_query["exact"][q] for q in qids])
    rng = np.random.default_rng(0)
    subsets = [rng.choice(len(qids), size=min(args.subset, len(qids)), replace=False) for _ in range(args.draws)]
    summary = []
    for mode in modes[1:]:
        diff = np.array([per_query[mode][q] for q in qids]) - exact
        deltas = np.array([diff[s].mean() for s in subsets])
        within = float(np.mean(np.abs(deltas) <= args.tolerance + 1e-12))
        rho = spearmanr(scores[mode], scores["exact"]).statistic
        q05, q95 = np.quantile(deltas, [0.05, 0.95])
        print(f"{mode:>6}: all-query delta={diff.mean():+.4f}, queries whose nDCG@10 moved: {np.sum(diff != 0)}, "
              f"{args.subset}-query runs within {args.tolerance}: {within:.1%} (delta 5-95%: {q05:+.4f} .. {q95:+.4f})")
        summary.append(f"{mode}_within={within:.3f} {mode}_delta_q05={q05:+.4f} {mode}_delta_q95={q95:+.4f} "
                       f"{mode}_rho={rho:.6f}")
    print(" ".join(summary))


if __name__ == "__main__":
    main()
