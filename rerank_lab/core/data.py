"""The data that flows into a pipeline: documents, queries, and a dataset that holds both.

Loading (BEIR layout, validation, download) lives in :mod:`rerank_lab.data`; these types
depend on nothing, so every layer can use them.

Usage::

    ds = Dataset("toy", "test", {"d1": Document("d1", "text", "title")}, {"q1": Query("q1", "text")},
                 {"q1": {"d1": 1}})
    ds.sample(n_queries=1), ds.restrict(["q1"]), ds.fingerprint
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterable, Mapping

# BEIR datasets where a query's own document sits in the corpus and must not count.
IDENTICAL_ID_DATASETS = {"arguana", "quora"}

Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """Title and text joined as BEIR's rerankers and BM25 baselines do."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True)
class Query:
    query_id: str
    text: str


Corpus = Mapping[str, Document]
Queries = Mapping[str, Query]


def corpus_fingerprint(corpus: Corpus) -> str:
    """sha256 over document ids, titles and texts: the key for indices built on a corpus."""
    digest = hashlib.sha256()
    for doc in corpus.values():
        digest.update(f"{doc.doc_id}\x1f{doc.title}\x1f{doc.text}\x1e".encode())
    return digest.hexdigest()[:20]


@dataclass
class Dataset:
    """A corpus, the queries judged in one split, and their graded judgments."""

    name: str
    split: str
    corpus: dict[str, Document]
    queries: dict[str, Query]
    qrels: Qrels
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, split={self.split!r}, {len(self.corpus)} documents, "
                f"{len(self.queries)} queries, {sum(map(len, self.qrels.values()))} judgments)")

    @property
    def ignore_identical_ids(self) -> bool:
        return self.name.lower() in IDENTICAL_ID_DATASETS

    @cached_property
    def fingerprint(self) -> str:
        return corpus_fingerprint(self.corpus)

    def restrict(self, query_ids: Iterable[str]) -> "Dataset":
        """The same corpus with only ``query_ids`` (and their judgments); unknown ids raise."""
        query_ids = list(query_ids)
        missing = [q for q in query_ids if q not in self.queries]
        if missing:
            raise KeyError(f"{len(missing)} query ids not in {self.name}/{self.split}, e.g. {missing[:3]}")
        qids = sorted(query_ids)
        return replace(self, queries={q: self.queries[q] for q in qids},
                       qrels={q: self.qrels[q] for q in qids if q in self.qrels})

    def sample(self, n_queries: int | None = None, n_distractors: int | None = None, seed: int = 0) -> "Dataset":
        """A smaller dataset: ``n_queries`` random queries and, when ``n_distractors`` is
        given, a corpus cut to their judged documents plus that many random others."""
        if n_queries is not None and (not isinstance(n_queries, int) or n_queries < 1):
            raise ValueError(f"n_queries must be a positive integer (or None for all), got {n_queries!r}")
        rng = random.Random(seed)
        qids = sorted(self.queries)
        if n_queries is not None and n_queries < len(qids):
            qids = sorted(rng.sample(qids, n_queries))
        qrels = {q: self.qrels[q] for q in qids if q in self.qrels}
        corpus = self.corpus
        if n_distractors is not None:
            judged = {d for judgments in qrels.values() for d in judgments if d in self.corpus}
            others = sorted(set(self.corpus) - judged)
            keep = judged | set(rng.sample(others, min(n_distractors, len(others))))
            corpus = {d: doc for d, doc in self.corpus.items() if d in keep}
        return Dataset(self.name, self.split, corpus, {q: self.queries[q] for q in qids}, qrels, list(self.warnings))
