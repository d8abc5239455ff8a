"""Dense corpus encoding: sentence-transformers ``encode`` against rerank_lab's token encoder.

Encodes the same SciFact documents both ways in one run (chunks alternate between the two, so
whatever else the machine does weighs on both alike), builds both dense runs on the test
queries, and prints the CPU, the per-document times and last:
``speedup=<ST seconds / ours> ndcg_delta=<ours - ST nDCG@10> peak_fraction=<ours> speedup_ceiling=<x>``:
the share of this CPU's fp32 matrix-multiply throughput (the kernel ceiling) our encoding reaches,
and the largest speedup over sentence-transformers any fp32 encoder could reach here (the ceiling
over sentence-transformers' own rate); bf16 or int8 kernels, where the CPU has them, raise it.

Usage::

    python benchmarks/dense_encode.py                 # full corpus (5,183 documents; ~10 min on 2 cores)
    python benchmarks/dense_encode.py --docs 1024 --mode fast
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from rerank_lab import Run, evaluate, load_dataset
from rerank_lab.analysis.manifest import machine
from rerank_lab.analysis.speed import encoder_flops, gemm_ceiling
from rerank_lab.components.encoder import TokenEncoder
from rerank_lab.components.models import MINILM, resolve_model


def search(queries: np.ndarray, docs: np.ndarray, doc_ids: list[str], qids: list[str], k: int = 100) -> Run:
    sims = queries @ docs.T
    top = np.argsort(-sims, axis=1)[:, :k]
    return Run.from_scores({q: {doc_ids[d]: float(sims[i, d]) for d in top[i]} for i, q in enumerate(qids)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=None, help="encode only the first N documents (default: all)")
    parser.add_argument("--mode", default="exact", choices=["exact", "fast", "int8"])
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--streams", type=int, default=None, help="OpenVINO streams (default: two where there are two cores)")
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    print(machine(), flush=True)
    if args.streams:
        from rerank_lab.components import openvino

        openvino.default_streams = lambda: args.streams
    ds = load_dataset("scifact")
    doc_ids = list(ds.corpus)[: args.docs]
    texts = [ds.corpus[d].full_text for d in doc_ids]
    st = SentenceTransformer(resolve_model(MINILM), device="cpu")
    ours = TokenEncoder(MINILM, st.max_seq_length, args.mode)

    def encode_ours(batch):
        pooled = ours.encode(batch, pooled=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def encode_st(batch):
        return st.encode(batch, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)

    encode_ours(texts[:8]), encode_st(texts[:8])  # load and warm up both
    seconds = {"st": 0.0, "ours": 0.0}
    vectors: dict[str, list[np.ndarray]] = {"st": [], "ours": []}
    for start in range(0, len(texts), args.chunk):
        chunk = texts[start:start + args.chunk]
        for name, encode in (("st", encode_st), ("ours", encode_ours)):
            t0 = time.perf_counter()
            vectors[name].append(encode(chunk))
            seconds[name] += time.perf_counter() - t0
    qids = list(ds.queries)
    q_texts = [ds.queries[q].text for q in qids]
    runs = {"st": search(encode_st(q_texts), np.concatenate(vectors["st"]), doc_ids, qids),
            "ours": search(encode_ours(q_texts), np.concatenate(vectors["ours"]), doc_ids, qids)}
    ndcg = {n: evaluate(r, ds.qrels, ["ndcg@10"])["ndcg@10"] for n, r in runs.items()}
    diff = float(np.abs(np.concatenate(vectors["st"]) - np.concatenate(vectors["ours"])).max())
    print(f"{len(texts)} documents: sentence-transformers {1000 * seconds['st'] / len(texts):.1f} ms/doc, "
          f"ours ({ours.runtime}, {ours.precision}) {1000 * seconds['ours'] / len(texts):.1f} ms/doc; "
          f"max |embedding difference| {diff:.2e}; nDCG@10 {ndcg['st']:.4f} vs {ndcg['ours']:.4f}")
    config = ours._loaded()["net"].config
    flops = encoder_flops([len(ids) for ids in ours.tokenize(texts)["input_ids"]], config.num_hidden_layers,
                          config.hidden_size, config.intermediate_size)
    ceiling = gemm_ceiling()
    rate = {name: flops / seconds[name] / 1e9 for name in seconds}
    print(f"fp32 matrix-multiply ceiling {ceiling:.0f} GFLOP/s; encoding reaches {rate['st']:.0f} GFLOP/s "
          f"(sentence-transformers) and {rate['ours']:.0f} (ours)")
    print(f"speedup={seconds['st'] / seconds['ours']:.2f} ndcg_delta={ndcg['ours'] - ndcg['st']:+.4f} "
          f"peak_fraction={rate['ours'] / ceiling:.2f} speedup_ceiling={ceiling / rate['st']:.2f}")


if __name__ == "__main__":
    main()
