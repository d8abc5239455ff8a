"""Resumable LLM reranking experiments: query by query, every result appended to disk.

CPU LLM runs take minutes per query, so each (reranker config, query) result is appended
to a JSONL file under ``cache_dir("llm_runs")`` as soon as it exists. An interrupted run,
or a notebook executed again, picks up where it stopped and pays only for what is new.
Methods are interleaved per query, so whatever finished covers the same queries for all.

Usage::

    runs = rerank_resumable({"listwise": ListwiseReranker(), "first": FirstReranker()}, dataset, candidates)
    runs["first"].costs[-1].as_dict()        # cost summed over the queries, as the pipeline reports it
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Mapping

from tqdm.auto import tqdm

from ..cache import cache_dir, stable_hash
from ..data import Dataset
from ..pipeline import Rerank, Stage
from ..run import Run, StageCost


def reranker_config(reranker) -> dict:
    """What identifies a reranker's outputs: its class, settings and model."""
    keys = ["style", "window", "stride", "passes", "max_passage_words", "max_new_tokens", "yes", "no"]
    config = {k: getattr(reranker, k) for k in keys if hasattr(reranker, k)}
    if hasattr(reranker, "alpha_labels"):  # stored as "alpha" so earlier records keep their keys
        config["alpha"] = reranker.alpha_labels
    if getattr(reranker, "alpha", 1.0) != 1.0 or getattr(reranker, "depth", None):  # interpolated output
        config.update(interpolate=getattr(reranker, "alpha", 1.0), depth=getattr(reranker, "depth", None))
    backend = getattr(reranker, "backend", None)
    return {"class": type(reranker).__name__, "model": getattr(backend, "identity", None), **config}


def results_path(reranker, dataset: Dataset, candidates: Run) -> Path:
    key = stable_hash(reranker_config(reranker), dataset.name, dataset.fingerprint, candidates.to_dict())
    return cache_dir("llm_runs") / f"{dataset.name}-{reranker.name}-{key}.jsonl"


def _load(path: Path) -> dict[str, dict]:
    records = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill: recompute that query
                continue
            records[record["qid"]] = record
    return records


def rerank_resumable(rerankers: Mapping[str, object], dataset: Dataset, candidates: Run,
                     max_seconds: float | None = None, progress: bool = True) -> dict[str, Run]:
    """Rerank ``candidates`` with each reranker, query by query (methods interleaved), reusing
    and extending the on-disk records. ``max_seconds`` stops starting new queries after that
    long (``0``: use what is recorded), once at least one query is done for every method;
    the Runs then cover the queries every method finished."""
    paths = {name: results_path(r, dataset, candidates) for name, r in rerankers.items()}
    done = {name: _load(path) for name, path in paths.items()}
    start = time.perf_counter()
    qids = [q for q in candidates.rankings if q in dataset.queries]
    for qid in tqdm(qids, desc="queries", disable=not progress, leave=False):
        complete = any(all(q in done[name] for name in rerankers) for q in qids)
        if max_seconds is not None and complete and time.perf_counter() - start >= max_seconds:
            break
        for name, reranker in rerankers.items():
            if qid in done[name]:
                continue
            one = candidates.subset([qid])
            stage = reranker if isinstance(reranker, Stage) else Rerank(reranker, progress=False)
            before = dict(getattr(reranker, "counters", {}))
            t0 = time.perf_counter()
            run = stage(dataset, one)
            seconds = time.perf_counter() - t0
            counters = {k: v - before.get(k, 0) for k, v in getattr(reranker, "counters", {}).items()}
            record = {"qid": qid, "scores": run.to_dict().get(qid, {}), "seconds": seconds, "counters": counters}
            with open(paths[name], "a", encoding="utf-8") as fh:  # one line per query: append is enough
                fh.write(json.dumps(record) + "\n")
            done[name][qid] = record
    common = [q for q in qids if all(q in done[name] for name in rerankers)]
    return {name: _as_run(name, [done[name][q] for q in common], candidates.subset(common)) for name in rerankers}


def _as_run(name: str, records: list[dict], candidates: Run) -> Run:
    counters: dict[str, int] = {}
    for record in records:
        for key, value in record["counters"].items():
            counters[key] = counters.get(key, 0) + value
    per_query = {r["qid"]: r["seconds"] for r in records}
    items = sum(len(r["scores"]) for r in records)
    cost = StageCost(name, sum(per_query.values()), items, per_query, counters)
    return Run.from_scores({r["qid"]: r["scores"] for r in records}, name=name, costs=[*candidates.costs, cost])


def cost_table(runs: Mapping[str, Run]) -> list[dict]:
    """Per-query averages of the last stage's cost: seconds, LLM calls, prompt/completion tokens."""
    rows = []
    for name, run in runs.items():
        cost = run.costs[-1]
        n = max(cost.queries, 1)
        c = cost.counters
        rows.append({"method": name, "queries": cost.queries, "s/query": round(cost.seconds / n, 2),
                     "llm_calls/query": round(c.get("llm_calls", 0) / n, 2),
                     "prompt_tok/query": round(c.get("prompt_tokens", 0) / n, 1),
                     "cached_prompt_tok/query": round(c.get("cached_prompt_tokens", 0) / n, 1),
                     "completion_tok/query": round(c.get("completion_tokens", 0) / n, 1),
                     "windows_repaired": f"{c.get('parse_windows_repaired', 0)}/{c.get('windows', 0)}"
                     if "windows" in c else "-"})
    return rows
