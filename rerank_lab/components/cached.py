"""Caching as a wrapper: any scorer's scores, stored on disk and reused.

Keys are the wrapped scorer's identity (settings + weights hash), the query and the
document text, so a retrained model, a new max length or a new precision never reuses a
stale score. Each entry records the compute seconds it cost, so a warm run still reports
what the model costs (``saved_seconds``; see :mod:`rerank_lab.core.cost`).

Usage::

    cached = Cached(my_scorer)              # or Cached(as_scorer(my_function))
    cached.score("query", ["doc a", "doc b"])
    cached.counters                         # cache_hits, cache_misses, saved_seconds, cache_seconds
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from ..core.files import stable_hash
from ..core.stage import Scorer
from .stores import KeyValueStore, text_key


@dataclass(frozen=True)
class Cached(Scorer):
    scorer: Scorer
    kind: str = "scores"
    path: str | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.scorer.name

    def identity(self) -> dict:
        return self.scorer.identity()  # a cache changes where scores come from, never what they are

    def inner(self) -> tuple[Scorer, ...]:
        return (self.scorer,)

    @property
    def store(self) -> KeyValueStore:
        return KeyValueStore.open(self.kind, self.path)

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return self.score_batch([(query, documents)])[0]

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        scorer_key = stable_hash(self.identity(), length=32)
        keys = [[text_key(scorer_key, query, str(d)) for d in docs] for query, docs in requests]
        t0 = time.perf_counter()
        found = self.store.get_many(k for ks in keys for k in ks)
        cache_seconds = time.perf_counter() - t0
        todo: list[tuple[str, list[str], list[str]]] = []  # per request: query, missing keys, their texts
        for (query, docs), ks in zip(requests, keys):
            missing = {k: str(d) for k, d in zip(ks, docs) if k not in found}
            if missing:
                todo.append((query, list(missing), list(missing.values())))
        hits = sum(k in found for ks in keys for k in ks)
        self.count("cache_hits", hits)
        self.count("saved_seconds", sum(found[k][1] for ks in keys for k in ks if k in found))
        if todo:
            loaded_before = self.scorer.counters.get("load_seconds", 0.0)
            t1 = time.perf_counter()
            fresh = self.scorer.score_batch([(q, texts) for q, _, texts in todo])
            spent = time.perf_counter() - t1 - (self.scorer.counters.get("load_seconds", 0.0) - loaded_before)
            per_item = max(spent, 0.0) / max(sum(len(t) for _, _, t in todo), 1)
            new = {k: (float(s), per_item) for (_, ks, _), scores in zip(todo, fresh) for k, s in zip(ks, scores)}
            t2 = time.perf_counter()
            self.store.put_many(new)  # one transaction per call (per query in a pipeline): resumable
            cache_seconds += time.perf_counter() - t2
            found.update(new)
            self.count("cache_misses", len(new))
        self.count("cache_seconds", cache_seconds)
        return [[float(found[k][0]) for k in ks] for ks in keys]
