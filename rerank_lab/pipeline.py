"""Stages and their algebra: ``>>`` chains stages, ``%`` cuts a stage's output to depth k.

A stage turns queries (and the previous stage's Run, if any) into a Run. First stages
ignore the incoming Run; rerankers rescore its candidates. A cascade is a stage too.

Usage::

    pipeline = BM25() % 100 >> Rerank(my_reranker)
    run = pipeline(dataset)                 # or pipeline.transform(queries, corpus)
    run.costs                               # one StageCost per stage
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from tqdm.auto import tqdm

from .data import Dataset, Document, Query
from .run import Run, StageCost

if TYPE_CHECKING:
    from .rerankers.base import Reranker

Corpus = Mapping[str, Document]
Queries = Mapping[str, Query]


class Stage(ABC):
    """Anything that maps (queries, corpus, previous Run) to a Run."""

    name: str = "stage"

    @abstractmethod
    def transform(self, queries: Queries, corpus: Corpus, previous: Run | None = None) -> Run:
        ...

    def __call__(self, dataset: Dataset, previous: Run | None = None) -> Run:
        return self.transform(dataset.queries, dataset.corpus, previous)

    def __rshift__(self, other: "Stage | Callable") -> "Cascade":
        return Cascade([self, other if isinstance(other, Stage) else Rerank(other)])

    def __rrshift__(self, other: "Stage") -> "Cascade":
        return Cascade([other, self])

    def __mod__(self, depth: int) -> "Cutoff":
        return Cutoff(self, depth)

    def __repr__(self) -> str:
        return self.name

    @property
    def stages(self) -> list["Stage"]:
        return [self]


class Cutoff(Stage):
    """Keep the first ``depth`` documents of ``stage``'s output (PyTerrier's ``%``)."""

    def __init__(self, stage: Stage, depth: int):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"rank cutoff must be a positive integer, got {depth!r}")
        self.stage, self.depth = stage, depth
        self.name = f"{stage.name}%{depth}"

    def transform(self, queries, corpus, previous=None):
        if isinstance(self.stage, FirstStage):  # retrieve only what is kept
            return self.stage.retrieve(queries, corpus, self.depth)
        return self.stage.transform(queries, corpus, previous).top(self.depth)


class Cascade(Stage):
    """Stages applied in order; each sees the previous one's Run."""

    def __init__(self, stages: Sequence[Stage]):
        flat: list[Stage] = []
        for stage in stages:
            flat.extend(stage.stages if isinstance(stage, Cascade) else [stage])
        self._stages = flat
        self.name = " >> ".join(s.name for s in flat)

    @property
    def stages(self) -> list[Stage]:
        return list(self._stages)

    def transform(self, queries, corpus, previous=None):
        run = previous
        for stage in self._stages:
            run = stage.transform(queries, corpus, run)
        assert run is not None
        return replace(run, name=self.name)


class FirstStage(Stage):
    """A retriever over the whole corpus. Subclasses implement :meth:`search`."""

    default_depth = 1000

    @abstractmethod
    def search(self, queries: Queries, corpus: Corpus, k: int) -> dict[str, dict[str, float]]:
        """Top-``k`` doc scores per query."""

    def prepare(self, corpus: Corpus) -> None:
        """Build or load the index for ``corpus`` (cached); not part of per-query latency."""

    def retrieve(self, queries: Queries, corpus: Corpus, k: int) -> Run:
        start = time.perf_counter()
        self.prepare(corpus)
        index_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scores = self.search(queries, corpus, k)
        seconds = time.perf_counter() - start
        # Batched retrieval has no per-query clock: spread the search time evenly.
        per_query = {q: seconds / max(len(queries), 1) for q in queries}
        cost = StageCost(self.name, seconds, sum(len(s) for s in scores.values()), per_query,
                         {"index_ms": round(1000 * index_seconds)})
        return Run.from_scores(scores, name=self.name, costs=[cost])

    def transform(self, queries, corpus, previous=None):
        return self.retrieve(queries, corpus, self.default_depth)


class Rerank(Stage):
    """Rescore each query's candidates with a :class:`Reranker`; keeps the candidate set.

    Cost per query is measured here once, for every reranker family: wall time, documents
    scored, and the deltas of the reranker's own ``counters`` (LLM calls, tokens, cache hits).
    """

    def __init__(self, reranker: "Reranker | Callable", name: str | None = None, progress: bool = True):
        from .rerankers.base import as_reranker  # rerankers.base builds on this module

        self.reranker = as_reranker(reranker)
        self.name = name or self.reranker.name
        self.progress = progress

    def transform(self, queries, corpus, previous=None):
        if previous is None:
            raise ValueError(f"{self.name} is a reranker: give it candidates, e.g. bm25 % 100 >> {self.name}")
        scores: dict[str, dict[str, float]] = {}
        per_query: dict[str, float] = {}
        counters = getattr(self.reranker, "counters", None)
        before = dict(counters) if counters is not None else {}
        items = 0
        start = time.perf_counter()
        todo = [q for q in previous.rankings if q in queries]
        for qid in tqdm(todo, desc=self.name, disable=not self.progress or len(todo) < 2, leave=False):
            doc_ids = previous.doc_ids(qid)
            t0 = time.perf_counter()
            if doc_ids:
                texts = [_document_text(corpus, d) for d in doc_ids]
                values = self.reranker.score(queries[qid].text, texts)
                if len(values) != len(doc_ids):
                    raise ValueError(f"{self.name}.score returned {len(values)} scores for {len(doc_ids)} documents")
                scores[qid] = {d: float(v) for d, v in zip(doc_ids, values)}
            else:
                scores[qid] = {}
            per_query[qid] = time.perf_counter() - t0
            items += len(doc_ids)
        seconds = time.perf_counter() - start
        deltas = {k: v - before.get(k, 0) for k, v in dict(counters or {}).items()}
        cost = StageCost(self.name, seconds, items, per_query, deltas)
        return Run.from_scores(scores, name=self.name, costs=[*previous.costs, cost])


def _document_text(corpus: Corpus, doc_id: str) -> str:
    try:
        return corpus[doc_id].full_text
    except KeyError:
        raise KeyError(f"candidate {doc_id!r} is not in the corpus given to the pipeline; "
                       f"rerank runs against the corpus they were retrieved from") from None


class Interpolate(Stage):
    """Blend a reranker's scores with the incoming run's scores, per query.

    final = alpha * norm(reranker) + (1 - alpha) * norm(previous) over the first ``depth``
    candidates (all when None), z-score or min-max normalised per query; the candidates
    below ``depth`` keep their order underneath. Score interpolation as in Wang, Zhuang &
    Zuccon, "BERT-based Dense Retrievers Require Interpolation with BM25" (ICTIR 2021).
    alpha = 1 is the reranker alone, alpha = 0 the incoming ranking.

    Usage::

        hybrid() % 100 >> Interpolate(load_reranker("maxsim"), alpha=0.7)
    """

    def __init__(self, reranker, alpha: float = 0.5, depth: int | None = None, normalise: str = "zscore",
                 name: str | None = None):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if normalise not in {"zscore", "minmax"}:
            raise ValueError(f"normalise must be 'zscore' or 'minmax', got {normalise!r}")
        self.rerank = reranker if isinstance(reranker, Rerank) else Rerank(reranker)
        self.alpha, self.depth, self.normalise = alpha, depth, normalise
        self.name = name or f"{self.rerank.name}~{alpha:g}"

    def transform(self, queries, corpus, previous=None):
        if previous is None:
            raise ValueError(f"{self.name} interpolates with a previous stage: give it candidates")
        reranked = self.rerank.transform(queries, corpus, previous.top(self.depth) if self.depth else previous)
        run = interpolate_runs(previous, reranked, self.alpha, self.normalise, name=self.name)
        run.costs = [*reranked.costs[:-1], replace(reranked.costs[-1], stage=self.name)]
        return run


def interpolate_runs(previous: Run, reranked: Run, alpha: float, normalise: str = "zscore",
                     name: str = "interpolated") -> Run:
    """Mix ``reranked`` scores into ``previous`` for the documents ``reranked`` holds;
    ``previous``'s other documents follow underneath in their order (see :class:`Interpolate`)."""
    scores = {}
    for qid, ranking in previous.rankings.items():
        new = _normalise(dict(reranked.rankings.get(qid, [])), normalise)
        old = _normalise({d: s for d, s in ranking if d in new}, normalise)
        scores[qid] = {d: alpha * new[d] + (1 - alpha) * old[d] for d in old}
        floor = min(scores[qid].values(), default=0.0)
        for i, (d, _) in enumerate(d_s for d_s in ranking if d_s[0] not in new):
            scores[qid][d] = floor - 1.0 - i
    return Run.from_scores(scores, name=name, costs=list(reranked.costs))


def _normalise(scores: Mapping[str, float], how: str) -> dict[str, float]:
    import numpy as np

    if not scores:
        return {}
    values = np.array(list(scores.values()), dtype=np.float64)
    if how == "zscore":
        spread = values.std()
        values = (values - values.mean()) / spread if spread > 0 else values * 0.0
    else:
        spread = values.max() - values.min()
        values = (values - values.min()) / spread if spread > 0 else values * 0.0
    return dict(zip(scores, values.tolist()))
