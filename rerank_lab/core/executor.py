"""Executors: where a stage's work runs. The executor changes where, never what.

The in-process executor (the default) calls ``stage.transform``; a distributed one
(:mod:`rerank_lab.distributed.ray`) shards the queries over workers and gathers the same Run
with the same per-stage costs.

Usage::

    run = InProcess().transform(stage, queries, corpus, previous)
    Experiment(dataset, pipelines, executor=RayExecutor())
"""
from __future__ import annotations

from typing import Protocol

from .data import Corpus, Queries
from .run import Run
from .stage import Stage


class Executor(Protocol):
    def transform(self, stage: Stage, queries: Queries, corpus: Corpus, previous: Run | None = None) -> Run:
        ...


class InProcess:
    """Run every stage here, in this process."""

    def transform(self, stage: Stage, queries: Queries, corpus: Corpus, previous: Run | None = None) -> Run:
        return stage.transform(queries, corpus, previous)

    def __repr__(self) -> str:
        return "InProcess()"
