"""Small real rerankers the tests share (no scripted scores: they compute from the text)."""
from __future__ import annotations

import importlib
from pathlib import Path

from rerank_lab.core.stage import Scorer


class Recorder(Scorer):
    """Lexical overlap (plus a length tie-break) that records how many candidates it saw per query.
    Not a dataclass: compares by identity, as a user's own object would."""

    def __init__(self, name: str, weight: float = 1.0):
        self._name, self.weight, self.seen = name, weight, []

    @property
    def name(self) -> str:
        return self._name

    def score(self, query, documents):
        self.seen.append(len(documents))
        self.count("calls")
        terms = set(query.lower().split())
        return [self.weight * len(terms & set(d.lower().split())) + len(d) * 1e-6 for d in documents]


def overlap(query, documents):
    """A plain function reranker."""
    return [len(set(query.lower().split()) & set(d.lower().split())) for d in documents]


def write_beir(folder: Path, corpus_lines, query_lines, qrels_rows, split="test") -> Path:
    """Write a small BEIR-layout dataset; lines are raw strings so tests can break them."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("\n".join(corpus_lines) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(query_lines) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + ["\t".join(map(str, r)) for r in qrels_rows]
    (folder / "qrels" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return folder


def required(module: str, extra: str):
    """Import ``module`` of the ``extra`` the test command installs, or fail loudly (never skip:
    a broken extra must not pass CI in silence)."""
    import pytest

    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - an extra that fails to import for any reason is a failure
        pytest.fail(f"{module} (the '{extra}' extra) does not import: {type(exc).__name__}: {exc}; the test "
                    f"command installs every extra: pip install -e '.[all,dev]'", pytrace=False)


def seeded_cross_encoder(folder: Path, num_labels: int = 1) -> str:
    """The offline MiniLM body with a seeded, untrained classification head, saved to ``folder``
    (equality and plumbing tests need a real network, not a trained one)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rerank_lab.components.models import MINILM, resolve_model

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(resolve_model(MINILM), num_labels=num_labels)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model(MINILM)).save_pretrained(folder)
    return str(folder)
