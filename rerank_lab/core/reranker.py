"""The reranker protocol: score one query against documents, one float per document.

Anything with a ``score(query, documents)`` method qualifies, and so does a plain function
``(query, documents) -> scores``. Depth cut-offs, score mixing, caching, passages, batching
and cost accounting are stages and wrappers around this protocol, written once.

Usage::

    def overlap(query, documents):
        return [len(set(query.split()) & set(d.split())) for d in documents]

    reranker = as_reranker(overlap)        # FunctionReranker, name "overlap"
    reranker.score("a b", ["a", "c"])      # [1, 0]
"""
from __future__ import annotations

from typing import Callable, Mapping, Protocol, Sequence, runtime_checkable


@runtime_checkable
class Reranker(Protocol):
    """``score(query, documents) -> one float per document`` (higher is better).

    Optional: ``name``; a ``counters`` mapping of running totals (``llm_calls``, ``cache_hits``,
    ``saved_seconds``...) that the pipeline turns into per-stage cost; ``score_batch(requests)``
    to score several queries' candidates at once.
    """

    def score(self, query: str, documents: Sequence[str]) -> Sequence[float]:
        ...


class FunctionReranker:
    """``fn(query, documents) -> scores`` as a Reranker. Two wrap the same function: equal."""

    def __init__(self, fn: Callable[[str, Sequence[str]], Sequence[float]], name: str | None = None):
        self.fn = fn
        name = name or getattr(fn, "__name__", None) or type(fn).__name__
        self.name = "function" if name == "<lambda>" else name

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return list(self.fn(query, documents))

    def __eq__(self, other) -> bool:
        return isinstance(other, FunctionReranker) and other.fn is self.fn and other.name == self.name

    def __hash__(self) -> int:
        return hash((id(self.fn), self.name))

    def __repr__(self) -> str:
        return f"FunctionReranker({self.name})"


def as_reranker(obj: object) -> Reranker:
    """An object with ``.score`` stays itself; a function is wrapped; anything else raises."""
    if callable(getattr(obj, "score", None)):
        return obj  # type: ignore[return-value]
    if callable(obj):
        return FunctionReranker(obj)  # type: ignore[arg-type]
    raise TypeError(f"{obj!r} is not a reranker: give an object with .score(query, documents) "
                    f"or a function (query, documents) -> scores")


def reranker_name(reranker: object) -> str:
    return getattr(reranker, "name", None) or type(reranker).__name__


def counters_of(reranker: object) -> Mapping[str, float]:
    """A reranker's running totals, or an empty mapping when it keeps none."""
    counters = getattr(reranker, "counters", None)
    return dict(counters) if counters is not None else {}
