"""The two caches every family shares: a key-value store and an embedding store.

Both live under ``RERANK_LAB_CACHE`` (default ``~/.cache/rerank_lab``), key on the scorer's
identity (settings + weights hash) plus the texts, record the compute seconds of every
entry (so a cache hit can report what it saved: :mod:`rerank_lab.core.cost`), and recover
from damage: a file that fails to read is moved aside with a :class:`CacheWarning` and its
entries are recomputed, never read from it.

* :class:`KeyValueStore`: one sqlite table (WAL, one transaction per write: a killed run
  loses at most the call in flight). Scores, LLM completions.
* :class:`EmbeddingStore`: arrays (token embeddings of a document, a chunk of corpus
  embeddings) in append-only ``.npy`` shards plus an index file written after its array, so a
  shard without its index is invisible. Memory-mapped on read.

Usage::

    store = KeyValueStore.open("scores")                # $RERANK_LAB_CACHE/scores/store.sqlite
    store.put_many({"k": (0.7, 0.012)}); store.get_many(["k"])  # {"k": (0.7, 0.012)}
    emb = EmbeddingStore("maxsim-abc123"); emb.put("h", array, seconds=0.01); emb.flush()
"""
from __future__ import annotations

import atexit
import json
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..core.files import atomic_path, atomic_save_npy, quarantine, stable_hash


def cache_root() -> Path:
    root = Path(os.environ.get("RERANK_LAB_CACHE") or Path.home() / ".cache" / "rerank_lab").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(kind: str) -> Path:
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def text_key(*parts: object) -> str:
    """The key of an entry: a 32-hex sha256 over its parts (scorer identity, query, text...)."""
    return stable_hash(*parts, length=32)


# ----------------------------------------------------------------------------- key-value

class KeyValueStore:
    """``key -> (value, seconds)`` in one sqlite file, shared by every scorer in the process."""

    _open: dict[str, "KeyValueStore"] = {}
    _open_lock = threading.Lock()

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @classmethod
    def open(cls, kind: str = "scores", path: str | os.PathLike | None = None) -> "KeyValueStore":
        """The process-wide store ``$RERANK_LAB_CACHE/<kind>/store.sqlite`` (or ``path``)."""
        target = str(Path(path) if path else cache_dir(kind) / "store.sqlite")
        with cls._open_lock:
            store = cls._open.get(target)
            if store is None or store._pid != os.getpid():
                store = cls._open[target] = cls(target)
        return store

    def _connection(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():  # a forked worker opens its own
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value, seconds REAL NOT NULL)")
            db.commit()
            self._db, self._pid = db, os.getpid()
        return self._db

    def _recovering(self, operation):
        """Run ``operation(db)``; a damaged file is moved aside and the operation retried on a new one."""
        with self._lock:
            try:
                return operation(self._connection())
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                self.close_connection()
                for suffix in ("", "-wal", "-shm"):
                    side = Path(f"{self.path}{suffix}")
                    if side.exists():
                        quarantine(side, f"sqlite: {exc}") if not suffix else side.unlink()
                return operation(self._connection())

    def get_many(self, keys: Iterable[str]) -> dict[str, tuple[object, float]]:
        unique = list(dict.fromkeys(keys))

        def read(db):
            found = {}
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                rows = db.execute(f"SELECT key, value, seconds FROM entries WHERE key IN ({','.join('?' * len(chunk))})",
                                  chunk)
                found.update({k: (v, s) for k, v, s in rows.fetchall()})
            return found

        return self._recovering(read) if unique else {}

    def put_many(self, entries: Mapping[str, tuple[object, float]]) -> None:
        if not entries:
            return
        rows = [(k, v, float(s)) for k, (v, s) in entries.items()]

        def write(db):
            with db:  # one transaction: all of this call or nothing
                db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)

        self._recovering(write)

    def __len__(self) -> int:
        return int(self._recovering(lambda db: db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]))

    def close_connection(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None


# ----------------------------------------------------------------------------- embeddings

class EmbeddingStore:
    """Arrays keyed by string in shards under ``$RERANK_LAB_CACHE/embeddings/<namespace>``.

    A shard is ``<name>.npy`` (all its arrays' rows concatenated, ``dtype``) and
    ``<name>.index.json`` (key -> [offset, rows, seconds]), the index written last. New
    entries are flushed every ``flush_every`` puts and at exit, so an interrupt loses at most
    that many. A shard that fails to load, or whose index points past its array, is moved
    aside and its entries recomputed.
    """

    def __init__(self, namespace: str, enabled: bool = True, flush_every: int = 512, dtype=np.float16):
        self.namespace, self.enabled, self.flush_every, self.dtype = namespace, enabled, flush_every, np.dtype(dtype)
        self.folder = cache_dir("embeddings") / namespace if enabled else None
        self._index: dict[str, tuple[str, int, int, float]] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._pending: dict[str, tuple[np.ndarray, float]] = {}
        self._seen_shards: set[str] = set()
        if enabled:
            self.refresh()
            ref = weakref.ref(self)
            atexit.register(lambda: ref() is not None and ref().flush())  # type: ignore[union-attr]

    def refresh(self) -> None:
        """Pick up shards written since (by another process, or before a restart)."""
        if self.folder is None:
            return
        for index_file in sorted(self.folder.glob("*.index.json")):
            name = index_file.name[: -len(".index.json")]
            if name in self._seen_shards:
                continue
            self._seen_shards.add(name)
            array_file = self.folder / f"{name}.npy"
            try:
                entries = json.loads(index_file.read_text())
                array = np.load(array_file, mmap_mode="r")
                if any(off + rows > array.shape[0] for off, rows, _ in entries.values()):
                    raise ValueError(f"index points past the {array.shape[0]} rows of its array")
            except (OSError, ValueError, EOFError) as exc:
                quarantine(index_file, str(exc))
                if array_file.exists():
                    quarantine(array_file, str(exc))
                continue
            self._arrays[name] = array
            for key, (offset, rows, seconds) in entries.items():
                self._index[key] = (name, offset, rows, seconds)

    def __len__(self) -> int:
        return len(self._index) + len(self._pending)

    def __contains__(self, key: str) -> bool:
        return key in self._pending or key in self._index

    def get(self, key: str) -> tuple[np.ndarray, float] | None:
        """(array, recorded compute seconds) or None."""
        if key in self._pending:
            return self._pending[key]
        entry = self._index.get(key)
        if entry is None:
            return None
        name, offset, rows, seconds = entry
        return self._arrays[name][offset:offset + rows], seconds

    def put(self, key: str, array: np.ndarray, seconds: float = 0.0) -> np.ndarray:
        """Store ``array`` (converted to the store's dtype); returns the stored copy, so that
        a value just computed and one read back later are identical."""
        stored = np.ascontiguousarray(array, dtype=self.dtype)
        self._pending[key] = (stored, float(seconds))
        if self.enabled and len(self._pending) >= self.flush_every:
            self.flush()
        return stored

    def flush(self) -> None:
        if not self.enabled or not self._pending or self.folder is None:
            return
        name = f"{time.time_ns():x}-{os.getpid()}"
        keys = list(self._pending)
        entries, offset = {}, 0
        for key in keys:
            rows = int(self._pending[key][0].shape[0])
            entries[key] = (offset, rows, round(self._pending[key][1], 6))
            offset += rows
        atomic_save_npy(self.folder / f"{name}.npy", np.concatenate([self._pending[k][0] for k in keys]))
        with atomic_path(self.folder / f"{name}.index.json") as tmp:
            tmp.write_text(json.dumps(entries))
        self._seen_shards.add(name)
        self._arrays[name] = np.load(self.folder / f"{name}.npy", mmap_mode="r")
        for key, (off, rows, seconds) in entries.items():
            self._index[key] = (name, off, rows, seconds)
        self._pending.clear()

    def nbytes(self) -> int:
        """Bytes of arrays held (on disk and pending)."""
        return int(sum(self._arrays[n][o:o + r].nbytes for n, o, r, _ in self._index.values())
                   + sum(a.nbytes for a, _ in self._pending.values()))
