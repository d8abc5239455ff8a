"""The offline LLM through llama.cpp against transformers: the same prompts, one run.

Builds real reranking prompts from SciFact test queries and their BM25 candidates: listwise
windows (generation), FIRST windows, yes/no pointwise and pairwise prompts (next-token logits),
and runs each through both backends on the same packaged GGUF weights, alternating, with the
on-disk call cache off. Prints the CPU, the seconds per kind, and last:
``generate_speedup=<transformers s / llama.cpp s> logits_speedup=<...> agreement=<share of prompts
with the same decision>`` (same FIRST top label, same yes/no sign, same pairwise preference, same
first identifier generated).

Usage::

    python benchmarks/llm_backends.py                       # the 1.5B, 3 queries (~15 min on 2 cores)
    python benchmarks/llm_backends.py --model qwen2.5-0.5b-instruct-q4_k_m --queries 2
"""
from __future__ import annotations

import argparse
import time

from rerank_lab import BM25, load_dataset
from rerank_lab.analysis.manifest import machine
from rerank_lab.llm.backends import load_backend
from rerank_lab.llm.labels import single_token_labels
from rerank_lab.llm.packaged import DEFAULT_GGUF
from rerank_lab.llm.parse import extract_identifiers
from rerank_lab.llm.prompts import listwise_messages, pointwise_messages
from rerank_lab.llm.scorer import truncate_words
from rerank_lab.rerankers.pairwise import pairwise_messages


def prompts(n_queries: int, window: int, words: int) -> list[dict]:
    ds = load_dataset("scifact").sample(n_queries, seed=7)
    run = (BM25() % window)(ds)
    jobs = []
    for qid in run.rankings:
        query = ds.queries[qid].text
        docs = [truncate_words(ds.corpus[d].full_text, words) for d in run.doc_ids(qid)]
        jobs.append({"kind": "generate", "query": query, "docs": docs})
        jobs.append({"kind": "first", "query": query, "docs": docs})
        jobs += [{"kind": "yesno", "query": query, "doc": d} for d in docs[:4]]
        jobs += [{"kind": "pairwise", "query": query, "a": docs[i], "b": docs[i + 1]} for i in range(3)]
    return jobs


def decide(backend, job: dict) -> tuple[str, object]:
    """(call kind, decision) for one job."""
    if job["kind"] == "generate":
        out = backend.generate(listwise_messages("rankzephyr", job["query"], job["docs"]), max_new_tokens=40)
        ids = extract_identifiers(out.text)
        return "generate", ids[0] if ids else None
    if job["kind"] == "first":
        labels = single_token_labels(backend).take(len(job["docs"]))
        messages = listwise_messages("rankzephyr", job["query"], job["docs"], labels=labels.labels)
        logits = backend.logits_for_tokens(messages, labels.tokens, labels.prefix).logits
        return "logits", labels.labels[max(range(len(logits)), key=logits.__getitem__)]
    if job["kind"] == "yesno":
        yes, no = backend.next_token_logits(pointwise_messages(job["query"], job["doc"]), ["Yes", "No"]).logits
        return "logits", yes > no
    a, b = backend.next_token_logits(pairwise_messages(job["query"], job["a"], job["b"]), [" A", " B"],
                                     assistant_prefix="Passage").logits
    return "logits", a > b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_GGUF)
    parser.add_argument("--queries", type=int, default=3)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--words", type=int, default=80)
    args = parser.parse_args()
    print(machine(), flush=True)
    jobs = prompts(args.queries, args.window, args.words)
    backends = {name: load_backend(args.model, name) for name in ("llamacpp", "transformers")}
    for backend in backends.values():  # warm up: first-call allocations are not the runtime's speed
        decide(backend, {"kind": "yesno", "query": "warm up", "doc": "a passage"})
    seconds = {name: {"generate": 0.0, "logits": 0.0} for name in backends}
    decisions: dict[str, list] = {name: [] for name in backends}
    for job in jobs:
        for name, backend in backends.items():
            t0 = time.perf_counter()
            kind, decision = decide(backend, job)
            seconds[name][kind] += time.perf_counter() - t0
            decisions[name].append(decision)
    agree = sum(a == b for a, b in zip(decisions["llamacpp"], decisions["transformers"])) / len(jobs)
    for name in backends:
        print(f"{name:>12}: generate {seconds[name]['generate']:.1f} s, logits {seconds[name]['logits']:.1f} s "
              f"({len(jobs)} prompts, {args.model})")
    gen = seconds["transformers"]["generate"] / seconds["llamacpp"]["generate"]
    logits = seconds["transformers"]["logits"] / seconds["llamacpp"]["logits"]
    print(f"generate_speedup={gen:.2f} logits_speedup={logits:.2f} agreement={agree:.2f}")


if __name__ == "__main__":
    main()
