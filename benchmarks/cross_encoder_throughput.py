"""Cross-encoder throughput: ours (exact fp32, fast bf16) vs sentence-transformers, one run.

Scores the same SciFact (query, BM25 candidate) pairs with sentence-transformers
``CrossEncoder.predict`` and with :class:`rerank_lab.rerankers.cross_encoder.CrossEncoder`
in both modes (same model, max length 256, same batch size): ``exact`` (fp32, through OpenVINO,
the default backend) and ``fast`` (bf16 through OpenVINO, through ``score()`` query by query as
a pipeline calls it, so its close calls at the top are re-scored in fp32 and that cost counts),
plus for reference ``fast-raw`` (bf16 alone, no close-call refinement), the torch backend
(``exact-torch``: fp32 eager; ``fast-torch``: bf16 weights) and ``int8`` (OpenVINO: int8
weights, dynamic per-token int8 activations, with refinement; skip with ``--no-int8``). The
pairs are split into chunks on query boundaries and the scorers take turns on each chunk, so
that load from other processes on a shared machine hits all of them alike. The last line is::

    exact_speedup=<x> exact_max_abs_diff=<x> fast_speedup=<x> fast_ndcg_delta=<x>

Model: the lab cross-encoder (rerank_lab/weights/lab-ce) or, when absent, the MiniLM body
with a seeded head (speed and equality only need the architecture).

Usage::

    RERANK_LAB_DATA=/work/shared/beir python benchmarks/cross_encoder_throughput.py [--pairs 2000]
"""
from __future__ import annotations

import argparse
import itertools
import tempfile
import time

import numpy as np


def benchmark_model(tmp: str) -> str:
    from rerank_lab.rerankers.cross_encoder import LAB_CE_DIR

    if (LAB_CE_DIR / "config.json").exists():
        return str(LAB_CE_DIR)
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rerank_lab.models import MINILM, resolve_model

    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(resolve_model(MINILM), num_labels=1).save_pretrained(tmp)
    AutoTokenizer.from_pretrained(resolve_model(MINILM)).save_pretrained(tmp)
    return tmp


def per_query(ce):
    """Score (query, text) pairs query by query through ``ce.score``: the pipeline's call."""
    def run(pairs):
        out = []
        for query, group in itertools.groupby(pairs, key=lambda p: p[0]):
            out.extend(ce.score(query, [text for _, text in group]))
        return out
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--per-query", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 mode (OpenVINO dynamic int8)")
    args = parser.parse_args()

    import torch
    from sentence_transformers import CrossEncoder as STCrossEncoder

    from rerank_lab.data import load_dataset
    from rerank_lab.evaluate import evaluate
    from rerank_lab.first_stage import BM25
    from rerank_lab.rerankers.cross_encoder import CrossEncoder
    from rerank_lab.run import Run

    dataset = load_dataset("scifact", split="test")
    n_queries = -(-args.pairs // args.per_query)
    dataset = dataset.sample(n_queries, seed=0)
    run = (BM25() % args.per_query)(dataset)
    pairs, owners = [], []
    for qid in run.rankings:
        for d in run.doc_ids(qid):
            pairs.append((dataset.queries[qid].text, dataset.corpus[d].full_text))
            owners.append((qid, d))
    pairs, owners = pairs[:args.pairs], owners[:args.pairs]

    with tempfile.TemporaryDirectory() as tmp:
        model = benchmark_model(tmp)
        st = STCrossEncoder(model, max_length=args.max_length, device="cpu")
        scorers = {
            "sentence-transformers": lambda p: st.predict(p, batch_size=args.batch_size,
                                                          activation_fn=torch.nn.Identity(), show_progress_bar=False),
            "exact": CrossEncoder(model, max_length=args.max_length, batch_size=args.batch_size, cache=False).predict,
            "fast": per_query(CrossEncoder(model, max_length=args.max_length, batch_size=args.batch_size,
                                           mode="fast", cache=False)),
            "fast-raw": CrossEncoder(model, max_length=args.max_length, batch_size=args.batch_size, mode="fast",
                                     refine_margin=0, cache=False).predict,
            "exact-torch": CrossEncoder(model, max_length=args.max_length, batch_size=args.batch_size,
                                        backend="torch", cache=False).predict,
            "fast-torch": CrossEncoder(model, max_length=args.max_length, batch_size=args.batch_size, mode="fast",
                                       backend="torch", cache=False).predict,
        }
        if not args.no_int8:
            scorers["int8"] = per_query(CrossEncoder(model, max_length=args.max_length, batch_size=args.batch_size,
                                                     mode="int8", cache=False))
        for fn in scorers.values():  # load models, warm up kernels
            fn(pairs[:8])
        seconds = {k: 0.0 for k in scorers}
        scores = {k: [] for k in scorers}
        starts = [i for i in range(len(pairs)) if i == 0 or owners[i][0] != owners[i - 1][0]] + [len(pairs)]
        bounds = sorted({min(starts, key=lambda s: abs(s - x)) for x in np.linspace(0, len(pairs), args.chunks + 1)})
        for a, b in zip(bounds[:-1], bounds[1:]):
            for name, fn in scorers.items():
                t0 = time.perf_counter()
                scores[name].append(np.asarray(fn(pairs[a:b]), dtype=np.float64).reshape(-1))
                seconds[name] += time.perf_counter() - t0
    scores = {k: np.concatenate(v) for k, v in scores.items()}
    for name in scorers:
        print(f"{name:>22}: {len(pairs) / seconds[name]:7.1f} pairs/s ({seconds[name]:.1f} s)")

    def ndcg(values):
        by_query: dict[str, dict[str, float]] = {}
        for (q, d), s in zip(owners, values):
            by_query.setdefault(q, {})[d] = float(s)
        return evaluate(Run.from_scores(by_query), dataset.qrels, ["ndcg@10"])["ndcg@10"]

    base = seconds["sentence-transformers"]
    diff = float(np.abs(scores["exact"] - scores["sentence-transformers"]).max())
    delta = ndcg(scores["fast"]) - ndcg(scores["exact"])
    print(f"model={model} pairs={len(pairs)} queries={len(run)} batch_size={args.batch_size} "
          f"max_length={args.max_length} threads={torch.get_num_threads()} "
          f"ndcg@10 exact={ndcg(scores['exact']):.4f} fast={ndcg(scores['fast']):.4f}")
    print(f"exact_torch_speedup={base / seconds['exact-torch']:.2f} "
          f"exact_torch_max_abs_diff={np.abs(scores['exact-torch'] - scores['sentence-transformers']).max():.2e}")
    print(f"fast_raw_speedup={base / seconds['fast-raw']:.2f} "
          f"fast_raw_ndcg_delta={ndcg(scores['fast-raw']) - ndcg(scores['exact']):+.4f}")
    print(f"fast_torch_speedup={base / seconds['fast-torch']:.2f} "
          f"fast_torch_ndcg_delta={ndcg(scores['fast-torch']) - ndcg(scores['exact']):+.4f}")
    if "int8" in scores:
        print(f"int8_speedup={base / seconds['int8']:.2f} int8_ndcg_delta={ndcg(scores['int8']) - ndcg(scores['exact']):+.4f}")
    print(f"exact_speedup={base / seconds['exact']:.2f} exact_max_abs_diff={diff:.2e} "
          f"fast_speedup={base / seconds['fast']:.2f} fast_ndcg_delta={delta:+.4f}")


if __name__ == "__main__":
    main()
