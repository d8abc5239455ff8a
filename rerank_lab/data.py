"""BEIR datasets: the BEIR folder layout, strict validation, download, and a toy set.

Layout (as written by the ``beir`` package and read by its ``GenericDataLoader``)::

    <root>/<dataset>/corpus.jsonl      {"_id", "title", "text"}
    <root>/<dataset>/queries.jsonl     {"_id", "text"}
    <root>/<dataset>/qrels/<split>.tsv query-id  corpus-id  score   (with a header line)

``<root>`` is ``RERANK_LAB_DATA`` when set. A dataset not found there is downloaded with
the official BEIR download (``beir.util.download_and_unzip``) when the machine is online.

Usage::

    ds = load_dataset("scifact", split="test")
    small = ds.sample(n_queries=20, n_distractors=500)
    toy = load_dataset("toy")
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

from .core.data import IDENTICAL_ID_DATASETS, Dataset, Document, Qrels, Query, corpus_fingerprint

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
TOY_ROOT = Path(__file__).parent / "toy"
# Names go into file paths and the download URL: plain words only, one sub-folder at most
# (a CQADupStack forum: "cqadupstack/android"), never "..", an absolute path or a query string.
_WORD = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_NAME = re.compile(rf"^{_WORD}(/{_WORD})?$")
_SPLIT = re.compile(rf"^{_WORD}$")


class DataError(ValueError):
    """A dataset is missing or malformed; the message names the file and what to do."""


class DataWarning(UserWarning):
    """A dataset problem that was counted and handled (the message says how)."""


__all__ = ["DataError", "DataWarning", "Dataset", "Document", "IDENTICAL_ID_DATASETS", "Query", "Qrels",
           "corpus_fingerprint", "dataset_dir", "load_dataset"]


def data_root() -> Path | None:
    value = os.environ.get("RERANK_LAB_DATA")
    return Path(value).expanduser() if value else None


def download_root() -> Path:
    root = data_root()
    if root is not None and os.access(root if root.exists() else root.parent, os.W_OK):
        return root
    return Path.home() / ".cache" / "rerank_lab" / "beir"


def check_name(name: str, split: str | None = None) -> None:
    """Refuse a dataset name or split that is not a plain name (before it reaches a path or a URL)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DataError(f"dataset name {name!r} is not a dataset name: use letters, digits, '.', '_' and '-' "
                        f"(e.g. 'scifact', or 'cqadupstack/android' for a sub-folder)")
    if split is not None and (not isinstance(split, str) or not _SPLIT.match(split)):
        raise DataError(f"split {split!r} is not a split name: use letters, digits, '.', '_' and '-' "
                        f"(e.g. 'test', 'dev', 'train'); it names qrels/<split>.tsv")


def dataset_dir(name: str, download: bool = True) -> Path:
    """Find ``name`` under RERANK_LAB_DATA (or the download cache); download it if allowed."""
    check_name(name)
    if name == "toy":
        return TOY_ROOT
    candidates = [r / name for r in (data_root(), download_root()) if r is not None]
    for path in candidates:
        if (path / "corpus.jsonl").exists():
            return path
    if not download or "/" in name:  # BEIR publishes whole datasets only
        raise DataError(_missing_message(name, candidates))
    try:
        return download_beir(name, download_root())
    except OSError as exc:  # no network, refused, or not a BEIR dataset name
        raise DataError(_missing_message(name, candidates) + f" The BEIR download failed too: {exc}") from exc


def _missing_message(name: str, looked_in: list[Path]) -> str:
    root = data_root()
    available = sorted(p.name for p in root.iterdir() if (p / "corpus.jsonl").exists()) if root and root.is_dir() else []
    where = ", ".join(str(p) for p in looked_in) or "(RERANK_LAB_DATA is not set)"
    return (f"Dataset {name!r} not found (looked in {where}). Set RERANK_LAB_DATA to a folder holding "
            f"{name}/corpus.jsonl, queries.jsonl and qrels/<split>.tsv"
            + (f"; datasets there: {', '.join(available)}." if available else "."))


def download_beir(name: str, root: Path) -> Path:
    """Download and unzip a BEIR dataset with the ``beir`` package, atomically."""
    from beir import util

    check_name(name)

    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}.") as tmp:
        folder = Path(util.download_and_unzip(BEIR_URL.format(name=name), tmp))
        target = root / name
        if not target.exists():
            shutil.move(str(folder), target)
    return target


# -- reading ----------------------------------------------------------------------
def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file; a line that is not UTF-8 is an error naming the file and line."""
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                yield line_no, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{line_no}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte "
                                f"{exc.start + 1} of the line); save the file as UTF-8.") from None


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.exists():
        raise DataError(f"{path} is missing: a BEIR dataset folder needs corpus.jsonl, queries.jsonl and qrels/.")
    for line_no, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line_no}: malformed JSON ({exc.msg} at column {exc.colno}). "
                            f"Fix or remove that line.") from None
        if not isinstance(record, dict) or "_id" not in record:
            raise DataError(f"{path}:{line_no}: each line must be a JSON object with an '_id' field.")
        yield line_no, record


def read_corpus(path: Path, problems: list[str]) -> dict[str, Document]:
    corpus: dict[str, Document] = {}
    first_line: dict[str, int] = {}
    empty: list[str] = []
    for line_no, rec in _read_jsonl(path):
        doc_id = str(rec["_id"])
        if doc_id in corpus:
            raise DataError(f"{path}:{line_no}: duplicate document id {doc_id!r} (first at line "
                            f"{first_line[doc_id]}). Document ids must be unique.")
        doc = Document(doc_id, str(rec.get("text") or ""), str(rec.get("title") or ""))
        if not doc.full_text.strip():
            empty.append(doc_id)
        corpus[doc_id] = doc
        first_line[doc_id] = line_no
    if not corpus:
        raise DataError(f"{path} holds no documents: nothing to retrieve. Give it one JSON object per line "
                        f"({{\"_id\", \"title\", \"text\"}}).")
    if empty:
        problems.append(f"{path}: {len(empty)} document(s) have no title and no text (e.g. {empty[0]!r}); "
                        f"they stay in the corpus and can only be retrieved by chance.")
    return corpus


def read_queries(path: Path) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    first_line: dict[str, int] = {}
    for line_no, rec in _read_jsonl(path):
        qid = str(rec["_id"])
        if qid in queries:
            raise DataError(f"{path}:{line_no}: duplicate query id {qid!r} (first at line {first_line[qid]}).")
        text = str(rec.get("text") or "")
        queries[qid] = Query(qid, text)
        first_line[qid] = line_no
    return queries


def read_qrels(path: Path) -> Qrels:
    if not path.exists():
        splits = sorted(p.stem for p in path.parent.glob("*.tsv")) if path.parent.exists() else []
        raise DataError(f"{path} is missing: no {path.stem!r} split. Available splits: "
                        f"{', '.join(splits) or 'none (no qrels/ folder)'}.")
    qrels: Qrels = {}
    for line_no, line in _lines(path):
        parts = line.rstrip("\n\r").split("\t")
        if line_no == 1 and parts[0] == "query-id":
            continue
        if not line.strip():
            continue
        if len(parts) != 3:
            raise DataError(f"{path}:{line_no}: expected 3 tab-separated columns "
                            f"'query-id corpus-id score', found {len(parts)}.")
        qid, doc_id, score = parts
        try:
            qrels.setdefault(qid, {})[doc_id] = int(float(score))
        except ValueError:
            raise DataError(f"{path}:{line_no}: relevance {score!r} is not a number.") from None
    return qrels


def load_dataset(name: str, split: str = "test", download: bool = True, strict: bool = False) -> Dataset:
    """Load a BEIR dataset (or ``"toy"``) and check it.

    Hard errors: missing folder/split, malformed lines, duplicate ids, empty judged queries.
    Counted warnings (errors with ``strict=True``): empty documents, judgments of documents
    not in the corpus (they count as relevant-but-unretrievable, as in trec_eval), judged
    queries missing from queries.jsonl (dropped).
    """
    check_name(name, split)
    folder = dataset_dir(name, download=download)
    problems: list[str] = []
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    corpus = read_corpus(folder / "corpus.jsonl", problems)
    all_queries = read_queries(folder / "queries.jsonl")

    unknown_docs = sorted({d for j in qrels.values() for d in j if d not in corpus})
    if unknown_docs:
        n = sum(d not in corpus for j in qrels.values() for d in j)
        problems.append(f"qrels/{split}.tsv: {n} judgment(s) name {len(unknown_docs)} document(s) not in "
                        f"corpus.jsonl (e.g. {unknown_docs[0]!r}); they count as relevant but unretrievable.")
    missing = sorted(q for q in qrels if q not in all_queries)
    if missing:
        problems.append(f"qrels/{split}.tsv: {len(missing)} judged query id(s) are not in queries.jsonl "
                        f"(e.g. {missing[0]!r}); those queries are dropped.")
        for q in missing:
            del qrels[q]
    queries = {q: all_queries[q] for q in qrels}
    empty = [q for q, query in queries.items() if not query.text.strip()]
    if empty:
        raise DataError(f"{folder / 'queries.jsonl'}: {len(empty)} judged quer(ies) have empty text "
                        f"(e.g. {empty[0]!r}); give them text or remove their judgments.")
    if not queries:
        raise DataError(f"{folder}/qrels/{split}.tsv judges no query of queries.jsonl: nothing to evaluate.")
    if strict and problems:
        raise DataError("; ".join(problems))
    for message in problems:
        warnings.warn(f"{name}: {message}", DataWarning, stacklevel=2)
    return Dataset(name, split, corpus, queries, qrels, problems)
