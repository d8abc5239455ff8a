"""Reranking cost: rerank_lab's ColBERT against PyLate on the same MiniLM body and the same candidates.

Both rerank the same SciFact test queries x BM25 top-100 with a ColBERT of the same shape
(all-MiniLM-L6-v2 body, the checkpoint's projection width, query length 32, document length 256). PyLate runs
its documented recipe (encode the query, encode the candidates, ``rank.rerank``) per query;
ours runs ``ColBERT.score`` per query from a cold on-disk cache. Ours saves time by
encoding each distinct document once per run (candidates repeat across queries), encoding
under CPU bf16 autocast, and sorting documents by length before batching.

PyLate gets our trained projection copied into its Dense layer, so both models compute the
same function up to the [Q]/[D] marker tokens (PyLate's query expansion follows the checkpoint's
[MASK] query augmentation setting), and the script reports how far their rankings
agree. Needs ``.bench-venv`` (``bash benchmarks/setup_bench_env.sh``).

Usage::

    RERANK_LAB_DATA=/work/shared/beir .bench-venv/bin/python benchmarks/colbert_rerank.py --queries 50

The last line printed is ``speedup=<PyLate seconds / our seconds>``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch


def candidates(n_queries: int, depth: int, seed: int):
    from rerank_lab import BM25, load_dataset

    dataset = load_dataset("scifact", split="test")
    sample = dataset.sample(n_queries, seed=seed)
    run = (BM25() % depth)(sample)
    items = [(qid, sample.queries[qid].text, run.doc_ids(qid)) for qid in sorted(run.rankings) if run.doc_ids(qid)]
    return dataset, items


def ours(checkpoint: str, items, corpus, bf16: bool) -> tuple[float, dict]:
    from rerank_lab.rerankers.colbert import ColBERT

    with tempfile.TemporaryDirectory() as cold:
        os.environ["RERANK_LAB_CACHE"] = cold  # cold cache: every document is encoded once, here
        reranker = ColBERT(checkpoint, bf16=bf16)
        reranker.score("warm up the model", ["load weights before timing"])
        start = time.perf_counter()
        scores = {qid: reranker.score(query, [corpus[d].full_text for d in docs]) for qid, query, docs in items}
        seconds = time.perf_counter() - start
        print(f"ours: {seconds:.1f}s", flush=True)
    return seconds, scores


def pylate(checkpoint: str, items, corpus, doc_len: int, query_len: int, dim: int,
           query_expansion: bool) -> tuple[float, dict]:
    from pylate import models, rank
    from safetensors.torch import load_file

    from rerank_lab.components.models import MINILM, resolve_model

    model = models.ColBERT(model_name_or_path=resolve_model(MINILM), device="cpu", embedding_size=dim,
                           document_length=doc_len, query_length=query_len,
                           do_query_expansion=query_expansion)  # [MASK] query augmentation, as the checkpoint
    linear = load_file(os.path.join(checkpoint, "model.safetensors"))["linear.weight"].float()
    dense = model[-1]
    with torch.no_grad():  # same projection as ours
        dense.linear.weight.copy_(linear)
    model.encode(["warm up"], is_query=True)
    start = time.perf_counter()
    scores = {}
    for qid, query, docs in items:
        q = model.encode([query], is_query=True, convert_to_tensor=False)
        d = model.encode([[corpus[x].full_text for x in docs]], is_query=False, batch_size=32)
        ranked = rank.rerank(documents_ids=[list(range(len(docs)))], queries_embeddings=q, documents_embeddings=d)
        by_index = {r["id"]: r["score"] for r in ranked[0]}
        scores[qid] = [float(by_index[i]) for i in range(len(docs))]
    seconds = time.perf_counter() - start
    print(f"pylate: {seconds:.1f}s", flush=True)
    return seconds, scores


def agreement(a: dict, b: dict, k: int = 10) -> float:
    """Mean overlap of the two top-k sets per query."""
    overlaps = []
    for qid in a:
        top_a = set(np.argsort(-np.asarray(a[qid]))[:k])
        top_b = set(np.argsort(-np.asarray(b[qid]))[:k])
        overlaps.append(len(top_a & top_b) / k)
    return float(np.mean(overlaps))


def main() -> None:
    from rerank_lab.components.colbert_ai import checkpoint_query_augmentation
    from rerank_lab.components.lab_weights import LAB_COLBERT_DIR as WEIGHTS_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--checkpoint", default=str(WEIGHTS_DIR))
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from colbert.infra import ColBERTConfig

    config = ColBERTConfig.load_from_checkpoint(args.checkpoint)
    dataset, items = candidates(args.queries, args.depth, args.seed)
    print(f"{len(items)} queries x top-{args.depth} BM25, {len({d for *_, ds in items for d in ds})} distinct "
          f"documents; doc_maxlen={config.doc_maxlen} query_maxlen={config.query_maxlen} dim={config.dim}; "
          f"torch threads={torch.get_num_threads()}", flush=True)
    pylate_seconds, pylate_scores = pylate(args.checkpoint, items, dataset.corpus, config.doc_maxlen,
                                           config.query_maxlen, config.dim,
                                           checkpoint_query_augmentation(args.checkpoint))
    our_seconds, our_scores = ours(args.checkpoint, items, dataset.corpus, bf16=not args.no_bf16)
    print(f"top-10 agreement ours vs pylate: {agreement(our_scores, pylate_scores):.3f}")
    print(f"per query: pylate {1000 * pylate_seconds / len(items):.0f} ms, ours {1000 * our_seconds / len(items):.0f} ms")
    print(f"speedup={pylate_seconds / our_seconds:.2f}")


if __name__ == "__main__":
    main()
