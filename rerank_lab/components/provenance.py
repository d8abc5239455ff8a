"""Provenance on disk: ``provenance.json`` beside a model's weights, and the judgments it names.

Every lab recipe that trains or tunes weights writes the :class:`~rerank_lab.core.provenance.TrainingData`
it read into the model folder; a model from elsewhere has none unless its user states it. The
fingerprint of each record's judgments lets evaluation check that the qrels it reloads are the
ones the model saw.

Usage::

    record = training_data("scifact", "train", role="train", query_ids=train_ids)
    add_provenance("rerank_lab/weights/lab-ce", [record])
    read_provenance("rerank_lab/weights/lab-ce")          # -> (TrainingData(...), ...)
    training_positives(read_provenance(folder), "scifact")  # {doc_id: [training records' labels]}
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..core.data import Qrels
from ..core.files import atomic_write_text, stable_hash
from ..core.provenance import TrainingData
from .models import local_model_dir

PROVENANCE_FILE = "provenance.json"


def qrels_fingerprint(qrels: Mapping[str, Mapping[str, int]], query_ids: Iterable[str] | None = None) -> str:
    """sha256 (20 hex) over the positive judgments (rel >= 1) of ``query_ids`` (all when None)."""
    keep = None if query_ids is None else set(query_ids)
    pairs = sorted((q, d) for q, judged in qrels.items() if keep is None or q in keep
                   for d, r in judged.items() if r >= 1)
    return stable_hash(pairs)


def training_data(dataset: str, split: str, role: str = "train", query_ids: Sequence[str] | None = None,
                  qrels: Mapping[str, Mapping[str, int]] | None = None) -> TrainingData:
    """A record of ``dataset:split`` (``query_ids`` of it, or all) with the fingerprint of its
    judgments; ``qrels`` saves reloading them when the caller holds them."""
    if qrels is None:
        from ..data import load_dataset

        qrels = load_dataset(dataset, split=split).qrels
    return TrainingData(dataset, split, role, tuple(query_ids) if query_ids is not None else None,
                        qrels_fingerprint(qrels, query_ids))


def read_provenance(model: str | os.PathLike) -> tuple[TrainingData, ...]:
    """The records in a model folder's ``provenance.json`` (none for a hub id or a folder without one)."""
    folder = local_model_dir(model)
    path = folder / PROVENANCE_FILE if folder is not None else None
    if path is None or not path.is_file():
        return ()
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return tuple(TrainingData.coerce(r) for r in record["trained_on"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a provenance record ({exc}); restore it from the model's source or "
                         f"remove it (the model then counts as trained on nothing this lab knows of)") from None


def write_provenance(folder: str | os.PathLike, records: Iterable[TrainingData], note: str | None = None) -> Path:
    """Write ``provenance.json`` (atomically), replacing what was there."""
    lines = ",\n  ".join(json.dumps(r.as_dict()) for r in dict.fromkeys(records))  # one record per line
    head = f'{{\n "note": {json.dumps(note)},\n' if note else "{\n"
    return atomic_write_text(Path(folder) / PROVENANCE_FILE, f'{head} "trained_on": [\n  {lines}\n ]\n}}\n')


def add_provenance(folder: str | os.PathLike, records: Iterable[TrainingData]) -> Path:
    """Append records to a folder's provenance (a tuner adds what it read to the trainer's)."""
    existing = read_provenance(folder) if (Path(folder) / PROVENANCE_FILE).exists() else ()
    return write_provenance(folder, [*existing, *records])


def stated(trained_on: Iterable[TrainingData | str | dict] | str | None) -> tuple[TrainingData, ...]:
    """What a user states for a model from elsewhere (``trained_on="msmarco:train"`` or a list)."""
    if not trained_on:
        return ()
    if isinstance(trained_on, (str, dict, TrainingData)):
        trained_on = [trained_on]
    return tuple(TrainingData.coerce(v) for v in trained_on)


def training_qrels(record: TrainingData) -> Qrels:
    """The judgments ``record`` names, reloaded (restricted to its queries); a fingerprint that no
    longer matches raises, since the split would then be computed against other judgments."""
    qrels = _split_qrels(record.dataset, record.split)
    if record.query_ids is not None:
        keep = set(record.query_ids)
        qrels = {q: j for q, j in qrels.items() if q in keep}
    if record.qrels_sha256 and qrels_fingerprint(qrels) != record.qrels_sha256:
        raise ValueError(f"the judgments of {record.label} differ from those the model was {record.role}ed on "
                         f"(fingerprint {qrels_fingerprint(qrels)} != {record.qrels_sha256}): evaluate with the "
                         f"dataset version the model saw, or retrain it")
    return qrels


@lru_cache(maxsize=16)
def _split_qrels(dataset: str, split: str) -> Qrels:
    import warnings

    from ..data import load_dataset

    with warnings.catch_warnings():  # the dataset's own problems are reported when it is evaluated
        warnings.simplefilter("ignore")
        return load_dataset(dataset, split=split).qrels


def training_positives(records: Iterable[TrainingData], dataset: str) -> dict[str, list[str]]:
    """``{doc_id: [labels of the records it is a positive in]}`` over the records of ``dataset``
    that carry labels (records of other datasets name other corpora and add nothing)."""
    positives: dict[str, list[str]] = {}
    for record in records:
        if not record.labels or record.dataset.lower() != dataset.lower():
            continue
        for judged in training_qrels(record).values():
            for doc_id, rel in judged.items():
                if rel >= 1 and record.label not in positives.setdefault(doc_id, []):
                    positives[doc_id].append(record.label)
    return positives
