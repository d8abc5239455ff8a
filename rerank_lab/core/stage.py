"""Stages and their algebra: ``>>`` chains stages, ``%`` cuts a stage's output to its top k.

A stage turns queries (and the previous stage's Run, if any) into a Run. First stages
ignore the incoming Run; rerankers rescore its candidates. A cascade is a stage too.
Stages are values: two stages with equal settings compare (and hash) equal, so an
``Experiment`` computes a shared prefix once and caches key on the same identity. Settings
never change on a live stage: build a new one (``dataclasses.replace``) instead.

Usage::

    pipeline = BM25() % 100 >> my_reranker          # a function, a Reranker or a Stage
    run = pipeline(dataset)                         # or pipeline.transform(queries, corpus)
    run.costs                                       # one StageCost per stage
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .cost import StageCost, add_counters, counter_delta, model_time
from .data import Corpus, Queries
from .progress import advance, in_job, progress_bar
from .reranker import as_reranker, counters_of, reranker_name
from .run import Run


class Stage(ABC):
    """Anything that maps (queries, corpus, previous Run) to a Run."""

    @property
    def name(self) -> str:  # subclasses with a ``name`` field override this
        return type(self).__name__.lower()

    @abstractmethod
    def transform(self, queries: Queries, corpus: Corpus, previous: Run | None = None) -> Run:
        ...

    def __call__(self, dataset, previous: Run | None = None) -> Run:
        return self.transform(dataset.queries, dataset.corpus, previous)

    def __rshift__(self, other: "Stage | Callable") -> "Cascade":
        return Cascade((self, as_stage(other)))

    def __rrshift__(self, other: "Stage | Callable") -> "Cascade":
        return Cascade((as_stage(other), self))

    def __mod__(self, k: int) -> "Cutoff":
        return Cutoff(self, k)

    def __str__(self) -> str:
        return self.name

    @property
    def stages(self) -> tuple["Stage", ...]:
        return (self,)

    def children(self) -> tuple[object, ...]:
        """The stages and rerankers this stage holds (walked for provenance and manifests)."""
        return ()

    # Loaded models, indices and counters live in ``_state``, outside the value: they are
    # neither compared nor pickled (a Ray worker loads its own).
    @property
    def _state(self) -> dict:
        return self.__dict__.setdefault("_state_", {})

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_state_"}

    def __setstate__(self, state):
        self.__dict__.update(state)


def as_stage(obj: "Stage | Callable | object") -> Stage:
    """A Stage stays itself; any reranker (object with ``.score`` or function) becomes ``Rerank``."""
    return obj if isinstance(obj, Stage) else Rerank(as_reranker(obj))


@dataclass(frozen=True)
class Cutoff(Stage):
    """Keep the first ``k`` documents of ``stage``'s output (PyTerrier's ``%``)."""

    stage: Stage
    k: int

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"rank cutoff must be a positive integer, got {self.k!r}")

    @property
    def name(self) -> str:
        return f"{self.stage.name}%{self.k}"

    def children(self):
        return (self.stage,)

    def transform(self, queries, corpus, previous=None):
        if isinstance(self.stage, FirstStage):  # retrieve only what is kept
            return self.stage.retrieve(queries, corpus, self.k)
        return self.stage.transform(queries, corpus, previous).top(self.k)


@dataclass(frozen=True)
class Cascade(Stage):
    """Stages applied in order; each sees the previous one's Run."""

    parts: tuple[Stage, ...]

    def __post_init__(self):
        flat: list[Stage] = []
        for stage in self.parts:
            flat.extend(stage.parts if isinstance(stage, Cascade) else [as_stage(stage)])
        object.__setattr__(self, "parts", tuple(flat))

    @property
    def name(self) -> str:
        return " >> ".join(s.name for s in self.parts)

    @property
    def stages(self) -> tuple[Stage, ...]:
        return self.parts

    def children(self):
        return self.parts

    def transform(self, queries, corpus, previous=None):
        run = previous
        for stage in self.parts:
            run = stage.transform(queries, corpus, run)
        assert run is not None
        return run.rename(self.name)


class FirstStage(Stage):
    """A retriever over the whole corpus. Subclasses implement :meth:`search` (and may
    :meth:`prepare` an index, which is not part of per-query latency)."""

    #: documents retrieved per query when no ``% k`` cut-off says otherwise
    default_k = 1000

    @abstractmethod
    def search(self, queries: Queries, corpus: Corpus, k: int) -> dict[str, dict[str, float]]:
        """Top-``k`` doc scores per query."""

    def prepare(self, corpus: Corpus) -> None:
        """Build or load the index for ``corpus`` (cached)."""

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
                         {"index_seconds": round(index_seconds, 3)}, device=devices(self))
        return Run.from_scores(scores, name=self.name, costs=[cost])

    def transform(self, queries, corpus, previous=None):
        return self.retrieve(queries, corpus, self.default_k)


@dataclass(frozen=True, eq=False)
class FixedRun(Stage):
    """A precomputed run as a first stage (a depth sweep retrieves once; a saved TREC file
    can be reranked). Equal only to itself."""

    run: Run
    label: str = "fixed"

    @property
    def name(self) -> str:
        return self.label

    def transform(self, queries, corpus, previous=None):
        return self.run.subset(queries)


@dataclass(frozen=True)
class Rerank(Stage):
    """Rescore each query's candidates with a reranker; keeps the candidate set.

    Cost per query is measured here once, for every reranker family: wall time, model time
    (:func:`~rerank_lab.core.cost.model_time`), items scored, and the deltas of the
    reranker's own ``counters``. ``batch_queries > 1`` hands several queries at once to a
    reranker's ``score_batch`` (full batches for short lists or a GPU); each query's share of
    a batch's time is its share of the documents scored.
    """

    reranker: object
    label: str | None = None
    batch_queries: int = 1
    progress: bool = field(default=True, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "reranker", as_reranker(self.reranker))
        if not isinstance(self.batch_queries, int) or self.batch_queries < 1:
            raise ValueError(f"batch_queries must be a positive integer, got {self.batch_queries!r}")

    @property
    def name(self) -> str:
        return self.label or reranker_name(self.reranker)

    def children(self):
        return (self.reranker,)

    def transform(self, queries, corpus, previous=None):
        if previous is None:
            raise ValueError(f"{self.name} is a reranker: give it candidates, e.g. bm25 % 100 >> {self.name}")
        todo = [q for q in previous.rankings if q in queries]
        scores: dict[str, dict[str, float]] = {}
        wall: dict[str, float] = {}
        model: dict[str, float] = {}
        start_counters = counters_of(self.reranker)
        items = 0
        start = time.perf_counter()
        step = self.batch_queries if callable(getattr(self.reranker, "score_batch", None)) else 1
        bar = progress_bar(total=len(todo), desc=self.name, leave=False,
                   disable=not self.progress or len(todo) < 2 or in_job())
        for first in range(0, len(todo), step):
            chunk = todo[first:first + step]
            requests = [(queries[q].text, [_document_text(corpus, d) for d in previous.doc_ids(q)]) for q in chunk]
            before = counters_of(self.reranker)
            t0 = time.perf_counter()
            if step == 1:
                values = [self.reranker.score(*requests[0]) if requests[0][1] else []]
            else:
                values = self.reranker.score_batch(requests)  # type: ignore[attr-defined]
            seconds = time.perf_counter() - t0
            delta = counter_delta(counters_of(self.reranker), before)
            chunk_model = model_time(seconds, delta)
            n_docs = sum(len(docs) for _, docs in requests)
            for qid, (_, docs), got in zip(chunk, requests, values):
                if len(got) != len(docs):
                    raise ValueError(f"{self.name}.score returned {len(got)} scores for {len(docs)} documents")
                scores[qid] = {d: float(v) for d, v in zip(previous.doc_ids(qid), got)}
                share = len(docs) / n_docs if n_docs else 1.0 / len(chunk)
                wall[qid], model[qid] = seconds * share, chunk_model * share
            items += n_docs
            advance(n_docs)
            bar.update(len(chunk))
        bar.close()
        flush = getattr(self.reranker, "flush", None)
        if callable(flush):  # what the reranker's stores hold in memory reaches the disk with the stage
            flush()
        counters = counter_delta(counters_of(self.reranker), start_counters)
        cost = StageCost(self.name, time.perf_counter() - start, items, wall, counters,
                         model_seconds=sum(model.values()), per_query_model_seconds=model,
                         device=devices(self.reranker))
        return Run.from_scores(scores, name=self.name, costs=[*previous.costs, cost])


def devices(stage: object) -> str:
    """Where ``stage``'s models computed: the distinct ``runs_on`` of it and of everything it holds
    (``"cpu"``, ``"cuda"``, ``"server"``; several joined by ``+``), ``"cpu"`` when nothing says."""
    found: set[str] = set()
    todo, seen = [stage], set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        where = getattr(obj, "runs_on", None)
        if isinstance(where, str):
            found.add(where.split(":")[0])
        children = getattr(obj, "children", None)
        if callable(children):
            todo.extend(children())
    return "+".join(sorted(found)) or "cpu"


def _document_text(corpus: Corpus, doc_id: str) -> str:
    try:
        return corpus[doc_id].full_text
    except KeyError:
        raise KeyError(f"candidate {doc_id!r} is not in the corpus given to the pipeline; "
                       f"rerank runs against the corpus they were retrieved from") from None


class Scorer(Stage):
    """Base of the lab's reranker families and wrappers: a Reranker that is also a Stage,
    so ``ce % 20`` and ``bm25 % 100 >> ce`` work directly.

    Subclasses are frozen dataclasses (settings are the value) and implement :meth:`score`;
    wrappers list what they wrap in :meth:`inner`, whose counters then add up in
    :attr:`counters`. :meth:`identity` says what determines the scores (model weights hash,
    lengths, precision...): stores key on it.
    """

    @abstractmethod
    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        ...

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """Scores of several (query, documents) requests; families override to batch across queries."""
        return [self.score(query, docs) if docs else [] for query, docs in requests]

    def identity(self) -> dict:
        """What the scores depend on; defaults to the class and its compared settings."""
        from dataclasses import fields, is_dataclass

        # device: a family whose scores change with it says so in its own identity (fp32 agrees across devices)
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.compare and f.name not in
                    ("name", "batch_size", "threads", "device")} if is_dataclass(self) else {}
        return {"class": type(self).__name__, **{k: (v.identity() if isinstance(v, Scorer) else v)
                                                 for k, v in settings.items()}}

    def inner(self) -> tuple["Scorer", ...]:
        return ()

    def flush(self) -> None:
        """Write what this scorer's stores hold in memory (a stage calls it when it finishes);
        wrappers flush what they wrap."""
        for inner in self.inner():
            inner.flush()

    def children(self):
        return self.inner()

    def loading(self):
        """``with self.loading(): ...`` around one-time model loading: its seconds are counted as
        ``load_seconds``, which per-query model latency and cached per-item costs leave out."""
        from contextlib import contextmanager

        @contextmanager
        def timed():
            t0 = time.perf_counter()
            try:
                yield
            finally:
                self.count("load_seconds", time.perf_counter() - t0)

        return timed()

    def count(self, key: str, n: float = 1) -> None:
        if not n:
            return
        counts = self._state.setdefault("counts", {})
        counts[key] = counts.get(key, 0) + n

    @property
    def counters(self) -> dict[str, float]:
        return add_counters(self._state.get("counts", {}), *(i.counters for i in self.inner()))

    def transform(self, queries, corpus, previous=None):
        return Rerank(self).transform(queries, corpus, previous)


@dataclass(frozen=True)
class FunctionScorer(Scorer):
    """Any reranker (a function or an object with ``.score``) as a :class:`Scorer`, so the shared
    wrappers (``Cached``, ``Passages``, ``Refine``) compose with it. Its identity is the function's
    name and source code: editing the function gives new cache keys."""

    reranker: object

    def __post_init__(self):
        object.__setattr__(self, "reranker", as_reranker(self.reranker))

    @property
    def name(self) -> str:
        return reranker_name(self.reranker)

    def children(self):
        return (self.reranker,)

    def identity(self) -> dict:
        import hashlib
        import inspect

        target = getattr(self.reranker, "fn", self.reranker)
        try:
            source = inspect.getsource(target if callable(target) and not hasattr(target, "score") else type(target))
        except (OSError, TypeError):
            source = repr(target)
        return {"class": "FunctionScorer", "name": f"{getattr(target, '__module__', '')}.{self.name}",
                "source": hashlib.sha256(source.encode()).hexdigest()[:16]}

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return [float(s) for s in self.reranker.score(query, documents)]  # type: ignore[attr-defined]

    @property
    def counters(self) -> dict[str, float]:
        return add_counters(self._state.get("counts", {}), counters_of(self.reranker))


def as_scorer(obj: object) -> Scorer:
    """A Scorer stays itself; any other reranker or function is wrapped in :class:`FunctionScorer`."""
    return obj if isinstance(obj, Scorer) else FunctionScorer(obj)
