"""Scale-out: corpus encoding for the dense first stage on 1 and 2 Ray workers, one run.

Encodes the first ``--docs`` SciFact documents with :class:`rerank_lab.Dense` through
:func:`rerank_lab.distributed.ray_executor.encode_corpus` on a local Ray with 1 worker and then 2
(each measurement in its own process with a fresh local Ray and an empty embedding store, so
nothing is served from a cache; each worker is an actor holding one CPU and one encoder; the time
includes starting the actors and loading their models, as a real job pays it), and in-process
for reference. Prints
documents per second for each and last ``scaling=<2-worker throughput / 1-worker throughput>``.
On a 2-core machine 2 workers is the ceiling: the number says how much of the second core
Ray's sharding turns into throughput (the rest is actor start-up and shard overhead).

Usage::

    RERANK_LAB_DATA=../shared/beir python benchmarks/scale_out.py [--docs N]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def encode_once(workers: int, docs: int | None) -> None:
    """One measurement in this (fresh) process: prints ``docs seconds chunks`` on the last line."""
    from rerank_lab import Dense, load_dataset
    from rerank_lab.distributed.ray_executor import RayExecutor, encode_corpus

    dataset = load_dataset("scifact", split="test")
    corpus = {d: dataset.corpus[d] for d in list(dataset.corpus)[:docs or None]}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RERANK_LAB_CACHE"] = cache
        if workers == 0:  # in-process, model loaded and warmed first
            dense = Dense()
            dense.corpus_embeddings({d: corpus[d] for d in list(corpus)[:64]})
            start = time.perf_counter()
            dense.corpus_embeddings(corpus)
            seconds, chunks = time.perf_counter() - start, len(dense.corpus_chunks(corpus))
        else:
            executor = RayExecutor(num_cpus=2, workers=workers)
            start = time.perf_counter()
            chunks = encode_corpus(Dense(), corpus, executor)
            seconds = time.perf_counter() - start
            executor.shutdown()
    print(len(corpus), seconds, chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=None, help="documents (default: all 5,183 of SciFact)")
    parser.add_argument("--once", type=int, default=None, help=argparse.SUPPRESS)  # one measurement (internal)
    args = parser.parse_args()
    if args.once is not None:
        return encode_once(args.once, args.docs)

    from rerank_lab.analysis.manifest import machine

    info = machine()
    print(f"cpu: {info.get('cpu')} ({info.get('cores')} cores, {info.get('cpu_flags')})", flush=True)
    rates = {}
    for workers in (1, 2, 0):  # each in its own process: a fresh Ray, nothing shared between measurements
        command = [sys.executable, __file__, "--once", str(workers)] + (["--docs", str(args.docs)] if args.docs else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        docs, seconds, chunks = out.split()
        rates[workers] = int(docs) / float(seconds)
        label = f"ray, {workers} worker(s)" if workers else "in-process (all cores)"
        print(f"{label}: {rates[workers]:7.1f} docs/s ({docs} documents, {chunks} chunks, {float(seconds):.1f} s)",
              flush=True)
    print(f"scaling={rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
