"""Scale-out: corpus encoding for the dense first stage on 1 and 2 Ray workers, one run.

Encodes the first ``--docs`` SciFact documents with :class:`rerank_lab.Dense` through
:func:`rerank_lab.distributed.ray_executor.encode_corpus` on a local Ray with 1 worker and then 2
(each worker is an actor holding one CPU and one encoder; every run starts from an empty
embedding store, so nothing is served from a cache; the time includes starting the actors and
loading their models, as a real job pays it), and in-process for reference. Prints
documents per second for each and last ``scaling=<2-worker throughput / 1-worker throughput>``.
On a 2-core machine 2 workers is the ceiling: the number says how much of the second core
Ray's sharding turns into throughput (the rest is actor start-up and shard overhead).

Usage::

    RERANK_LAB_DATA=../shared/beir python benchmarks/scale_out.py [--docs N]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=None, help="documents (default: all 5,183 of SciFact)")
    args = parser.parse_args()

    from rerank_lab import Dense, load_dataset
    from rerank_lab.analysis.experiment import machine
    from rerank_lab.distributed.ray_executor import RayExecutor, encode_corpus

    dataset = load_dataset("scifact", split="test")
    corpus = {d: dataset.corpus[d] for d in list(dataset.corpus)[:args.docs or None]}
    info = machine()
    print(f"cpu: {info.get('cpu')} ({info.get('cores')} cores, {info.get('cpu_flags')}); {len(corpus)} documents",
          flush=True)
    rates = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["RERANK_LAB_CACHE"] = cache
            executor = RayExecutor(num_cpus=2, workers=workers)
            start = time.perf_counter()
            chunks = encode_corpus(Dense(), corpus, executor)
            seconds = time.perf_counter() - start
            executor.shutdown()
        rates[workers] = len(corpus) / seconds
        print(f"ray, {workers} worker(s): {rates[workers]:7.1f} docs/s ({chunks} chunks, {seconds:.1f} s)", flush=True)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RERANK_LAB_CACHE"] = cache
        dense = Dense()
        dense.corpus_embeddings({d: corpus[d] for d in list(corpus)[:64]})
        start = time.perf_counter()
        dense.corpus_embeddings(corpus)
        print(f"in-process (all cores): {len(corpus) / (time.perf_counter() - start):7.1f} docs/s", flush=True)
    print(f"scaling={rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
