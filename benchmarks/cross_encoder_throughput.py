"""Cross-encoder throughput and fidelity: ours against sentence-transformers, in one run.

Scores the same SciFact (query, BM25 top-k) pairs with sentence-transformers
``CrossEncoder.predict`` and with :class:`rerank_lab.rerankers.cross_encoder.CrossEncoderScorer`
(same model, max length, batch size): ``exact`` (fp32; OpenVINO when installed, the default),
``exact-torch`` (fp32 eager) and ``fast`` (bf16 where the CPU has bf16 kernels, with close calls
at the top re-scored in fp32 through :class:`~rerank_lab.components.refine.Refine`; on a CPU
without bf16 it *is* exact, and the report says so). The pairs are split into chunks on query
boundaries and the scorers take turns on each chunk, so load from other processes hits all alike.
The last line is::

    exact_speedup=<x> exact_max_abs_diff=<x> fast_speedup=<x> fast_ndcg_delta=<x>

Usage::

    RERANK_LAB_DATA=../shared/beir python benchmarks/cross_encoder_throughput.py [--pairs 2000]
"""
from __future__ import annotations

import argparse
import itertools
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--per-query", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--chunks", type=int, default=4)
    args = parser.parse_args()

    import torch
    from sentence_transformers import CrossEncoder as STCrossEncoder

    from rerank_lab import BM25, Run, evaluate, load_dataset
    from rerank_lab.analysis.manifest import machine
    from rerank_lab.components.lab_weights import LAB_CE_DIR
    from rerank_lab.rerankers.cross_encoder import CrossEncoderScorer, cross_encoder

    model = str(LAB_CE_DIR)
    dataset = load_dataset("scifact", split="test").sample(-(-args.pairs // args.per_query), seed=0)
    run = (BM25() % args.per_query)(dataset)
    owners = [(q, d) for q in run.rankings for d in run.doc_ids(q)][:args.pairs]
    pairs = [(dataset.queries[q].text, dataset.corpus[d].full_text) for q, d in owners]

    def per_query(scorer):
        def score(chunk):
            out = []
            for query, group in itertools.groupby(chunk, key=lambda p: p[0]):
                out.extend(scorer.score(query, [text for _, text in group]))
            return out
        return score

    common = dict(max_length=args.max_length, batch_size=args.batch_size)
    st = STCrossEncoder(model, max_length=args.max_length, device="cpu")
    fast = cross_encoder(model, mode="fast", cache=False, **common)
    scorers = {
        "sentence-transformers": lambda p: st.predict(p, batch_size=args.batch_size,
                                                      activation_fn=torch.nn.Identity(), show_progress_bar=False),
        "exact": CrossEncoderScorer(model, **common).predict,
        "exact-torch": CrossEncoderScorer(model, backend="torch", **common).predict,
        "fast": per_query(fast),
    }
    for fn in scorers.values():  # load models, warm kernels
        fn(pairs[:8])
    seconds = dict.fromkeys(scorers, 0.0)
    scores: dict[str, list] = {k: [] for k in scorers}
    starts = [i for i in range(len(pairs)) if i == 0 or owners[i][0] != owners[i - 1][0]] + [len(pairs)]
    bounds = sorted({min(starts, key=lambda s: abs(s - x)) for x in np.linspace(0, len(pairs), args.chunks + 1)})
    for a, b in zip(bounds[:-1], bounds[1:]):
        for name, fn in scorers.items():
            t0 = time.perf_counter()
            scores[name].append(np.asarray(fn(pairs[a:b]), dtype=np.float64).reshape(-1))
            seconds[name] += time.perf_counter() - t0
    final = {k: np.concatenate(v) for k, v in scores.items()}

    def ndcg(values) -> float:
        by_query: dict[str, dict[str, float]] = {}
        for (q, d), s in zip(owners, values):
            by_query.setdefault(q, {})[d] = float(s)
        return evaluate(Run.from_scores(by_query), dataset.qrels, ["ndcg@10"]).means["ndcg@10"]

    cpu = machine()
    print(f"cpu: {cpu.get('cpu')} | flags: {cpu.get('cpu_flags')} | threads={torch.get_num_threads()} "
          f"pairs={len(pairs)} batch_size={args.batch_size} max_length={args.max_length}")
    for name in scorers:
        print(f"{name:>22}: {len(pairs) / seconds[name]:7.1f} pairs/s  nDCG@10 {ndcg(final[name]):.4f}")
    base = seconds["sentence-transformers"]
    print(f"exact_torch_speedup={base / seconds['exact-torch']:.2f} "
          f"exact_torch_max_abs_diff={np.abs(final['exact-torch'] - final['sentence-transformers']).max():.2e}")
    print(f"exact_speedup={base / seconds['exact']:.2f} "
          f"exact_max_abs_diff={np.abs(final['exact'] - final['sentence-transformers']).max():.2e} "
          f"fast_speedup={base / seconds['fast']:.2f} fast_ndcg_delta={ndcg(final['fast']) - ndcg(final['exact']):+.4f}")


if __name__ == "__main__":
    main()
