"""Index and search time of the first stages on SciFact (test queries), cold and warm cache, and
BM25 through bm25s (ours) against rank_bm25 in the same run.

Usage::

    RERANK_LAB_DATA=../shared/beir .venv/bin/python benchmarks/first_stage.py [--dataset scifact] [--skip-dense]
    RERANK_LAB_DATA=../shared/beir .bench-venv/bin/python benchmarks/first_stage.py --skip-dense   # with rank_bm25

Cold = a fresh RERANK_LAB_CACHE (index built / corpus encoded); warm = a new stage object
loading from the disk cache. Search = all test queries, top 1000, after indexing.

bm25s against rank_bm25 (``BM25Okapi``, the common pure-Python BM25; installed by
``benchmarks/setup_bench_env.sh``, or ``pip install rank-bm25==0.2.2``): both index the same
tokens (our tokenizer: lower case, English stopwords, Snowball stems) and score every test query
against the whole corpus, in alternating chunks of queries so that load from elsewhere weighs on
both. The last line is ``bm25s_speedup_search= bm25s_speedup_index=`` (rank_bm25 seconds / bm25s
seconds).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def bm25s_against_rank_bm25(dataset, chunk: int = 50) -> str | None:
    """Index and search seconds of bm25s (our BM25 stage's library) and rank_bm25 on the same tokens;
    the ``bm25s_speedup_*=`` line, or None when rank_bm25 is not installed."""
    try:
        import rank_bm25
    except ImportError:
        print("rank_bm25 is not installed: `bash benchmarks/setup_bench_env.sh` (or `pip install rank-bm25==0.2.2`) "
              "to compare against it")
        return None
    import bm25s
    import numpy as np

    from rerank_lab import BM25, Run, evaluate

    stage = BM25()
    tokenizer = stage._tokenizer()
    doc_ids = list(dataset.corpus)
    corpus_ids = tokenizer.tokenize([dataset.corpus[d].full_text for d in doc_ids], return_as="ids",
                                    show_progress=False)
    vocab = tokenizer.get_vocab_dict()
    words = {i: w for w, i in vocab.items()}
    corpus_words = [[words[i] for i in doc] for doc in corpus_ids]
    qids = list(dataset.queries)
    query_ids = tokenizer.tokenize([dataset.queries[q].text for q in qids], return_as="ids", update_vocab=False,
                                   show_progress=False)
    query_words = [[words[i] for i in q] for q in query_ids]

    ours, ours_index = timed(lambda: _bm25s_index(bm25s, stage, corpus_ids, vocab))
    theirs, theirs_index = timed(lambda: rank_bm25.BM25Okapi(corpus_words, k1=stage.k1, b=stage.b))
    ours_search = theirs_search = 0.0
    ours_run: dict = {}
    theirs_run: dict = {}
    for start in range(0, len(qids), chunk):  # alternate: the same load weighs on both
        part = range(start, min(start + chunk, len(qids)))
        found, seconds = timed(lambda: ours.retrieve([query_ids[i] for i in part if query_ids[i]], k=1000,
                                                     show_progress=False, n_threads=1))
        ours_search += seconds
        kept = [i for i in part if query_ids[i]]
        for row, i in enumerate(kept):
            ours_run[qids[i]] = {doc_ids[d]: float(s) for d, s in zip(found[0][row], found[1][row]) if s > 0}
        scores, seconds = timed(lambda: [theirs.get_scores(query_words[i]) for i in part])
        theirs_search += seconds
        for i, row in zip(part, scores):
            top = np.argsort(-row)[:1000]
            theirs_run[qids[i]] = {doc_ids[d]: float(row[d]) for d in top if row[d] > 0}
    for name, run in (("bm25s", ours_run), ("rank_bm25", theirs_run)):
        ndcg = evaluate(Run.from_scores(run), dataset.qrels, ["ndcg@10"])["ndcg@10"]
        print(f"{name:9s} index {(ours_index if name == 'bm25s' else theirs_index):7.2f} s | search "
              f"{(ours_search if name == 'bm25s' else theirs_search):7.2f} s for {len(qids)} queries | nDCG@10 {ndcg:.4f}")
    return (f"bm25s_speedup_search={theirs_search / ours_search:.1f} "
            f"bm25s_speedup_index={theirs_index / ours_index:.1f}")


def _bm25s_index(bm25s, stage, corpus_ids, vocab):
    retriever = bm25s.BM25(k1=stage.k1, b=stage.b, method=stage.method)
    retriever.index((corpus_ids, vocab), show_progress=False)
    return retriever


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--skip-dense", action="store_true")
    args = parser.parse_args()
    os.environ["RERANK_LAB_CACHE"] = tempfile.mkdtemp(prefix="rerank_lab_bench_")
    warnings.simplefilter("ignore")
    from rerank_lab import BM25, Dense, evaluate, load_dataset

    dataset = load_dataset(args.dataset)
    n_docs, n_queries = len(dataset.corpus), len(dataset.queries)
    from rerank_lab.analysis.manifest import machine

    print(f"{args.dataset}: {n_docs} documents, {n_queries} test queries; on {machine()['cpu']}")
    stages = [("bm25", BM25, lambda s: s.index(dataset.corpus))]
    if not args.skip_dense:
        stages.append(("dense", Dense, lambda s: s.corpus_embeddings(dataset.corpus)))
    for name, factory, build in stages:
        stage = factory()
        _, cold = timed(lambda: build(stage))
        _, warm = timed(lambda: build(factory()))
        run, search = timed(lambda: stage.retrieve(dataset.queries, dataset.corpus, 1000))
        ndcg = evaluate(run, dataset.qrels, ["ndcg@10"])["ndcg@10"]
        print(f"{name:6s} index cold {cold:8.2f} s ({n_docs / cold:8.1f} docs/s) | warm load {warm:6.2f} s | "
              f"search {search:6.2f} s ({n_queries / search:8.1f} queries/s) | nDCG@10 {ndcg:.4f}")
    line = bm25s_against_rank_bm25(dataset)
    if line:
        print(line)


if __name__ == "__main__":
    main()
