"""Provenance: the judgments a model learned or was tuned from, and how to find them in a pipeline.

A trained model records what it read (dataset, split, which queries, a fingerprint of their
judgments); evaluation uses it to tell test queries whose relevant documents the model saw as
training positives (*contaminated*) from the rest (*clean*). Any stage or reranker can declare
its own through a ``training_data()`` method or a ``trained_on`` attribute ("dataset:split"
strings, :class:`TrainingData` values or their dicts); :func:`provenance` collects them over a
whole pipeline, walking :meth:`~rerank_lab.core.stage.Stage.children`.

Usage::

    TrainingData.parse("msmarco:train")             # what a user states for a hub model
    provenance(parse_pipeline("hybrid>>ce"))        # (TrainingData('scifact', 'train', ...), ...)
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Iterable

ROLES = ("train", "tune", "stated")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class TrainingData:
    """One set of judgments a model read: ``role`` says how (trained on, tuned on, or stated by
    the user for a model from elsewhere); ``query_ids`` None means every judged query of the
    split; ``labels`` False marks label-free data (pseudo-queries), which adds no positives."""

    dataset: str
    split: str
    role: str = "train"
    query_ids: tuple[str, ...] | None = None
    qrels_sha256: str | None = None
    labels: bool = True

    def __post_init__(self):
        for what, value in (("dataset", self.dataset), ("split", self.split)):
            if not isinstance(value, str) or not _NAME.match(value):
                raise ValueError(f"training data {what} {value!r} is not a dataset/split name: write "
                                 f"DATASET:SPLIT, e.g. 'scifact:train'")
        if self.role not in ROLES:
            raise ValueError(f"training data role {self.role!r}: use one of {', '.join(ROLES)}")
        if self.query_ids is not None:
            object.__setattr__(self, "query_ids", tuple(sorted(str(q) for q in self.query_ids)))

    @classmethod
    def parse(cls, text: str, role: str = "stated") -> "TrainingData":
        """``"dataset:split"`` (as ``--trained-on`` takes it)."""
        dataset, sep, split = str(text).strip().partition(":")
        if not sep or not dataset or not split:
            raise ValueError(f"cannot read training data {text!r}: write DATASET:SPLIT, e.g. 'scifact:train'")
        return cls(dataset, split, role)

    @classmethod
    def coerce(cls, value: "TrainingData | str | dict") -> "TrainingData":
        if isinstance(value, TrainingData):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, dict):
            known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        raise TypeError(f"training data must be 'dataset:split', a TrainingData or its dict, got {value!r}")

    @property
    def label(self) -> str:
        return f"{self.dataset}:{self.split}"

    def as_dict(self) -> dict:
        out = asdict(self)
        out["query_ids"] = list(self.query_ids) if self.query_ids is not None else None
        return out


def declared(obj: object) -> tuple[TrainingData, ...]:
    """What ``obj`` itself says it read (not its children)."""
    method = getattr(obj, "training_data", None)
    if callable(method):
        return tuple(TrainingData.coerce(v) for v in method())
    stated = getattr(obj, "trained_on", None) or ()
    if isinstance(stated, (str, dict, TrainingData)):
        stated = (stated,)
    return tuple(TrainingData.coerce(v) for v in stated)


def provenance(obj: object, extra: Iterable[TrainingData | str] = ()) -> tuple[TrainingData, ...]:
    """Every training record in ``obj`` and the stages and rerankers it holds, once each, in order."""
    found: list[TrainingData] = [TrainingData.coerce(v) for v in extra]
    stack, seen = [obj], set()
    while stack:
        node = stack.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        found.extend(declared(node))
        children = getattr(node, "children", None)
        stack[:0] = list(children()) if callable(children) else []
    return tuple(dict.fromkeys(found))
