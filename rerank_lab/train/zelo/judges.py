"""Judges: anything that says how likely document a is more relevant than document b to a query.

* :class:`LLMJudge`: the pairwise LLM family (both orders asked and averaged; Qin et al. 2023);
* :class:`RerankerJudge`: any reranker, P(a beats b) = sigmoid((s_a - s_b) / temperature);
* :class:`EnsembleJudge`: the mean of several judges' probabilities (zELO's judges are ensembles).

:func:`judge_query` asks a judge about the pairs of a plan; every answer goes through the shared
key-value store (``KeyValueStore("zelo")``), so judging resumes where it stopped and a rerun is free.

Usage::

    judge = EnsembleJudge((LLMJudge(Pairwise()), RerankerJudge(load_reranker("maxsim"))))
    votes = judge_query(judge, query, documents, cycle_plan(len(documents), k=4))
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Protocol, Sequence

from ...components.stores import KeyValueStore, text_key
from ...core.cost import add_counters, counter_delta, model_time
from ...core.files import stable_hash
from ...core.reranker import counters_of
from .fit import Vote
from .sampling import Pair


class Judge(Protocol):
    name: str

    def identity(self) -> dict: ...

    def judge_pairs(self, query: str, documents: Sequence[str], pairs: Sequence[Pair]) -> list[float]:
        """P(documents[i] beats documents[j]) for each (i, j)."""

    @property
    def counters(self) -> dict[str, float]:
        """The running totals of the rerankers it asks (cache hits, saved and lookup seconds...)."""


@dataclass(frozen=True)
class RerankerJudge:
    """A reranker as a judge: one scoring pass per query, then sigmoid of score differences."""

    reranker: object
    temperature: float = 1.0
    name: str = "reranker-judge"

    def identity(self) -> dict:
        inner = getattr(self.reranker, "identity", None)
        return {"judge": "reranker", "temperature": self.temperature,
                "reranker": inner() if callable(inner) else repr(self.reranker)}

    @property
    def counters(self) -> dict[str, float]:
        return dict(counters_of(self.reranker))

    def judge_pairs(self, query, documents, pairs):
        scores = list(self.reranker.score(query, list(documents)))
        return [1.0 / (1.0 + math.exp(-(scores[i] - scores[j]) / self.temperature)) for i, j in pairs]


@dataclass(frozen=True)
class LLMJudge:
    """The pairwise LLM family as a judge (both orders per pair, two calls)."""

    pairwise: object
    name: str = "llm-judge"

    def identity(self) -> dict:
        llm = self.pairwise.llm
        return {"judge": "llm-pairwise", "model": llm.identity, "words": self.pairwise.max_passage_words}

    @property
    def counters(self) -> dict[str, float]:
        return dict(counters_of(self.pairwise))

    def judge_pairs(self, query, documents, pairs):
        return [self.pairwise.judge(query, documents[i], documents[j]) for i, j in pairs]


@dataclass(frozen=True)
class EnsembleJudge:
    """The (weighted) mean of several judges' probabilities."""

    judges: tuple
    weights: tuple | None = None
    name: str = "ensemble-judge"

    def identity(self) -> dict:
        return {"judge": "ensemble", "weights": self.weights, "members": [j.identity() for j in self.judges]}

    @property
    def counters(self) -> dict[str, float]:
        return add_counters(*(counters_of(j) for j in self.judges))

    def judge_pairs(self, query, documents, pairs):
        weights = self.weights or tuple(1.0 for _ in self.judges)
        answers = [j.judge_pairs(query, documents, pairs) for j in self.judges]
        total = sum(weights)
        return [sum(w * a[k] for w, a in zip(weights, answers)) / total for k in range(len(pairs))]


def judge_query(judge: Judge, query: str, documents: Sequence[str], pairs: Sequence[Pair],
                store: KeyValueStore | None = None) -> tuple[list[Vote], dict]:
    """Votes ``(i, j, p)`` for the plan's pairs (cached per judge, query and document pair), and
    counters: ``judged`` (asked now), ``cache_hits``, ``seconds`` (every vote at the judge's model
    time when it was asked, cache hits included, so a resumed run reports what an uninterrupted one
    does). Model time is the judge's compute with empty caches: what its rerankers' own caches
    (LLM calls, token embeddings) saved is added back and their lookups and model loading taken off
    (:func:`~rerank_lab.core.cost.model_time`), so warm inner caches do not shrink it."""
    store = store if store is not None else KeyValueStore.open("zelo")  # an empty store is falsy (len 0)
    judge_key = stable_hash(judge.identity(), length=32)
    keys = [text_key(judge_key, query, documents[i], documents[j]) for i, j in pairs]
    found = store.get_many(keys)
    todo = [k for k, key in enumerate(keys) if key not in found]
    if todo:
        before = counters_of(judge)
        t0 = time.perf_counter()
        fresh = judge.judge_pairs(query, documents, [pairs[k] for k in todo])
        spent = model_time(time.perf_counter() - t0, counter_delta(counters_of(judge), before))
        per = spent / len(todo)
        store.put_many({keys[k]: (json.dumps(float(p)), per) for k, p in zip(todo, fresh)})
        found.update({keys[k]: (json.dumps(float(p)), per) for k, p in zip(todo, fresh)})
    votes = [(i, j, float(json.loads(found[key][0]))) for (i, j), key in zip(pairs, keys)]
    seconds = sum(float(found[key][1] or 0.0) for key in keys)
    return votes, {"judged": len(todo), "cache_hits": len(pairs) - len(todo), "seconds": seconds}
