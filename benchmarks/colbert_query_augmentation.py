"""Step 0 of the lab ColBERT with and without colbert-ai's [MASK] query augmentation.

Builds the identity-initialised MiniLM ColBERT (``build_initial_checkpoint``: the recipe's
starting point, no training) and reranks the hybrid top-100 of the held-out tuning queries
recorded by the committed checkpoint (SciFact held-out train queries, NFCorpus dev; never
test) by pure MaxSim, with augmentation on (colbert-ai's default) and off, next to the
zero-shot MaxSim over raw MiniLM tokens. It is the measurement behind the recipe's
``query_augmentation=False``. The last line is::

    <dataset>: augmented=<nDCG@10> plain=<nDCG@10> zero_shot=<nDCG@10> ...

Usage::

    RERANK_LAB_DATA=/work/shared/beir python benchmarks/colbert_query_augmentation.py [--queries 200]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=200, help="tuning queries per dataset (sampled, seed 0)")
    args = parser.parse_args()

    from rerank_lab.data import load_dataset
    from rerank_lab.evaluate import evaluate
    from rerank_lab.first_stage import hybrid
    from rerank_lab.rerankers.colbert import WEIGHTS_DIR, ColBERTReranker, zero_shot
    from rerank_lab.train.colbert import ColBERTTrainConfig, build_initial_checkpoint

    info = json.loads((WEIGHTS_DIR / "rerank_lab_training.json").read_text())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # infer_doc_maxlen: the documents are encoded as the trained checkpoint encodes them
        cfg = ColBERTTrainConfig()
        step0 = build_initial_checkpoint(ColBERTTrainConfig(doc_maxlen=cfg.infer_doc_maxlen), Path(tmp) / "colbert-step0", [])
        rerankers = {"augmented": ColBERTReranker(step0, query_augmentation=True),
                     "plain": ColBERTReranker(step0, query_augmentation=False),
                     "zero_shot": zero_shot()}
        for name, data in info["data"].items():
            tuning = data["tuning"]
            ds = load_dataset(name, split=tuning["split"]).restrict(tuning["query_ids"]).sample(args.queries, seed=0)
            first = (hybrid() % 100)(ds)
            row = {"hybrid": evaluate(first, ds.qrels, ["ndcg@10"])["ndcg@10"]}
            for label, reranker in rerankers.items():
                row[label] = evaluate(reranker.transform(ds.queries, ds.corpus, first), ds.qrels, ["ndcg@10"])["ndcg@10"]
            results[f"{name}/{tuning['split']} ({len(ds.queries)} q)"] = row
        for reranker in rerankers.values():
            reranker.flush()
    for label, row in results.items():
        print(f"{label}: " + " ".join(f"{k}={v:.4f}" for k, v in row.items()))


if __name__ == "__main__":
    main()
