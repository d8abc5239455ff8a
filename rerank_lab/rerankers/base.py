"""The reranker protocol every family implements: score one query against documents.

Reranking a Run to depth k, cost accounting and progress live once in
:class:`rerank_lab.pipeline.Rerank`, not in each family.

Usage::

    class Overlap:
        name = "overlap"
        def score(self, query, documents):
            return [len(set(query.split()) & set(d.split())) for d in documents]

    pipeline = bm25 % 100 >> Overlap()          # or >> (lambda q, docs: [...])

Families in this package subclass :class:`BaseReranker` (a Reranker that is also a
Stage) and register a factory name in ``rerankers/__init__.py``.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Callable, Protocol, Sequence, runtime_checkable

from ..pipeline import Interpolate, Rerank, Stage


@runtime_checkable
class Reranker(Protocol):
    """``score(query, documents) -> one float per document`` (higher is better).

    Optional: a ``counters`` dict of running totals (``llm_calls``, ``prompt_tokens``,
    ``cache_hits``...) that the pipeline turns into per-stage cost.
    """

    name: str

    def score(self, query: str, documents: Sequence[str]) -> Sequence[float]:
        ...


class FunctionReranker:
    """Wrap ``fn(query, documents) -> scores`` as a Reranker."""

    def __init__(self, fn: Callable[[str, Sequence[str]], Sequence[float]], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "function")
        if self.name == "<lambda>":
            self.name = "function"

    def score(self, query: str, documents: Sequence[str]) -> Sequence[float]:
        return list(self.fn(query, documents))


def as_reranker(obj: Reranker | Callable) -> Reranker:
    if hasattr(obj, "score") and callable(obj.score):
        if not hasattr(obj, "name"):
            obj.name = type(obj).__name__  # type: ignore[attr-defined]
        return obj  # type: ignore[return-value]
    if callable(obj):
        return FunctionReranker(obj)
    raise TypeError(f"{obj!r} is not a reranker: give an object with .score(query, documents) "
                    f"or a function (query, documents) -> scores")


class BaseReranker(Stage):
    """Base for the lab's reranker families: a Reranker that is also a Stage, so
    ``ce % 20`` and ``bm25 % 100 >> ce`` work directly."""

    name = "reranker"
    #: weight of this reranker against the incoming run's scores (1 = reranker alone; see Interpolate)
    alpha: float = 1.0
    #: rescore only the first ``depth`` candidates; the rest stay below in their order
    depth: int | None = None

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}

    @abstractmethod
    def score(self, query: str, documents: Sequence[str]) -> Sequence[float]:
        ...

    def transform(self, queries, corpus, previous=None):
        if previous is not None and (self.alpha < 1.0 or self.depth):
            return Interpolate(Rerank(self), self.alpha, self.depth, name=self.name).transform(
                queries, corpus, previous)
        return Rerank(self).transform(queries, corpus, previous)

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n
