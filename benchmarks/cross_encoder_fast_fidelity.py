"""How often do the approximate cross-encoder modes keep nDCG@10 within 0.002 of exact on a 100-query run?

``benchmarks/cross_encoder_throughput.py`` checks ``fast`` on one fixed sample of 100 SciFact
test queries, where one top-rank swap of a relevant document moves nDCG@10 by about 0.0037
(1 − 1/log2(3), over 100 queries). That makes its ``fast_ndcg_delta`` a coin with a known bias
rather than a measurement. This script estimates the coin, and is where the close-call margin
(``refine_margin``) of ``fast`` and ``int8`` is chosen: it scores every query of a split that is
not test (NFCorpus ``dev`` by default, which the lab cross-encoder never trained on) against its
top-20 BM25 candidates in ``exact`` and in each approximate mode at each margin, then draws many
100-query subsets and reports how many keep |Δ nDCG@10| ≤ 0.002, the quantiles of Δ, and the
share of pairs re-scored in fp32 (the cost of the margin). Scores go through one temporary cache,
so each mode's model runs once and a margin only costs lookups. The last line is::

    fast_within=<fraction> fast_delta_q05=<x> fast_delta_q95=<x> fast_refined=<fraction>  (default margin)

Usage::

    RERANK_LAB_DATA=/work/shared/beir python benchmarks/cross_encoder_fast_fidelity.py \\
        [--dataset scifact --split train --margins 0,0.005,0.01,0.02 --modes fast,int8]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def main() -> None:
    from rerank_lab.rerankers.cross_encoder import REFINE_MARGIN

    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="nfcorpus")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--per-query", type=int, default=20)
    parser.add_argument("--subset", type=int, default=100, help="queries per simulated run")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--tolerance", type=float, default=0.002)
    parser.add_argument("--modes", default="fast,int8")
    parser.add_argument("--margins", default=f"0,0.005,{REFINE_MARGIN},0.02")
    args = parser.parse_args()
    if args.split == "test":
        parser.error("pick a split other than test: this script is for choosing settings")

    from tqdm.auto import tqdm

    import os

    from rerank_lab import BM25, Run, evaluate, load_dataset
    from rerank_lab.components.lab_weights import LAB_CE_DIR
    from rerank_lab.rerankers.cross_encoder import cross_encoder

    dataset = load_dataset(args.dataset, split=args.split)
    run = (BM25() % args.per_query)(dataset)
    # queries BM25 finds nothing for have nothing to rerank: left out, not counted as unmoved
    lists = {q: docs for q in run.rankings if (docs := run.doc_ids(q))}
    n_pairs = sum(map(len, lists.values()))
    margins = [float(m) for m in args.margins.split(",")]
    print(f"model={LAB_CE_DIR} {args.dataset}/{args.split}: {len(lists)} queries, {n_pairs} pairs")

    rng = np.random.default_rng(0)
    per_query: dict[str, dict[str, float]] = {}
    summary = ""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RERANK_LAB_CACHE"] = tmp  # a private score store: exact scores shared by the refiners
        for mode, margin in [("exact", 0.0)] + [(m, g) for m in args.modes.split(",") for g in margins]:
            ce = cross_encoder(LAB_CE_DIR, mode=mode, refine_margin=margin)
            t0 = time.perf_counter()
            by_query = {q: dict(zip(docs, ce.score(dataset.queries[q].text, [dataset.corpus[d].full_text for d in docs])))
                        for q, docs in tqdm(lists.items(), desc=f"{mode} margin {margin}", leave=False)}
            seconds = time.perf_counter() - t0
            values = evaluate(Run.from_scores(by_query), dataset.qrels, ["ndcg@10"]).per_query["ndcg@10"]
            label = "exact" if mode == "exact" else f"{mode}@{margin:g}"
            per_query[label] = values
            refined = ce.counters.get("refined_pairs", 0) / n_pairs
            speed = f"{n_pairs / seconds:6.1f} pairs/s" if ce.counters.get("cache_misses") else "  (from cache)"
            if mode == "exact":
                print(f"{label:>12}: {speed}  ndcg@10={np.mean(list(values.values())):.4f}")
                qids = sorted(values)
                exact = np.array([values[q] for q in qids])
                subsets = [rng.choice(len(qids), size=min(args.subset, len(qids)), replace=False)
                           for _ in range(args.draws)]
                continue
            diff = np.array([values[q] for q in qids]) - exact
            deltas = np.array([diff[s].mean() for s in subsets])
            within = float(np.mean(np.abs(deltas) <= args.tolerance + 1e-12))
            q05, q95 = np.quantile(deltas, [0.05, 0.95])
            print(f"{label:>12}: {speed}  refined {refined:5.1%} of pairs, queries moved {int(np.sum(diff != 0)):3d}, "
                  f"{args.subset}-query runs within {args.tolerance}: {within:6.1%} (delta 5-95%: {q05:+.4f} .. {q95:+.4f})")
            if mode == "fast" and margin == REFINE_MARGIN:
                summary = (f"fast_within={within:.3f} fast_delta_q05={q05:+.4f} fast_delta_q95={q95:+.4f} "
                           f"fast_refined={refined:.3f}")
    print(summary or "(the default margin was not among --margins)")


if __name__ == "__main__":
    main()
