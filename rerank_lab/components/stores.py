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
  shard without its index is invisible. A shard's name carries the sha256 of its array file,
  checked before its first entry is served. Memory-mapped on read.

Usage::

    store = KeyValueStore.open("scores")                # $RERANK_LAB_CACHE/scores/store.sqlite
    store.put_many({"k": (0.7, 0.012)}); store.get_many(["k"])  # {"k": (0.7, 0.012)}
    emb = EmbeddingStore("maxsim-abc123"); emb.put("h", array, seconds=0.01); emb.flush()
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..core.files import UnwritablePath, atomic_path, file_sha256, make_folder, quarantine, stable_hash


def cache_root() -> Path:
    """``$RERANK_LAB_CACHE`` (default ``~/.cache/rerank_lab``), created if missing."""
    root = Path(os.environ.get("RERANK_LAB_CACHE") or Path.home() / ".cache" / "rerank_lab").expanduser()
    try:
        return make_folder(root)
    except UnwritablePath as exc:
        raise UnwritablePath(f"{exc} (the cache folder: set RERANK_LAB_CACHE to a folder you can write to)") from None


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
    ``<name>.index.json`` (key -> [offset, rows, seconds]), the index written last; ``<name>``
    ends with the sha256 of the ``.npy`` file. New entries are written every ``flush_every``
    puts, on :meth:`flush`, and when the store is collected or the process exits, so an
    interrupt loses at most that many. A shard that fails to load, whose index is not one, points
    past its array, or whose array no longer matches its checksum (checked before its first entry
    is served) is moved aside with one warning and its entries recomputed. Shards without a
    checksum in their name are not read.

    ``enabled=False`` is no cache at all: nothing is read, written or kept in memory.
    """

    def __init__(self, namespace: str, enabled: bool = True, flush_every: int = 512, dtype=np.float16):
        self.namespace, self.enabled, self.flush_every, self.dtype = namespace, enabled, flush_every, np.dtype(dtype)
        self.folder = cache_dir("embeddings") / namespace if enabled else None
        self._index: dict[str, tuple[str, int, int, float]] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._verified: set[str] = set()
        self._pending: dict[str, tuple[np.ndarray, float]] = {}
        self._seen_shards: set[str] = set()
        if enabled:
            self.refresh()
            # not a method of self: the store can be collected, and what it holds still reaches the disk
            weakref.finalize(self, _write_shard, self.folder, self._pending)

    def refresh(self) -> None:
        """Pick up shards written since (by another process, or before a restart)."""
        if self.folder is None:
            return
        for index_file in sorted(self.folder.glob("*.index.json")):
            name = index_file.name[: -len(".index.json")]
            if name in self._seen_shards or not _SHARD.match(name):
                continue
            self._seen_shards.add(name)
            array_file = self.folder / f"{name}.npy"
            try:
                entries = _shard_index(index_file)
                array = np.load(array_file, mmap_mode="r")
                if any(off + rows > array.shape[0] for off, rows, _ in entries.values()):
                    raise ValueError(f"index points past the {array.shape[0]} rows of its array")
            except (OSError, ValueError, EOFError) as exc:
                quarantine(index_file, str(exc), companions=[array_file])
                continue
            self._arrays[name] = array
            for key, (offset, rows, seconds) in entries.items():
                self._index[key] = (name, offset, rows, seconds)

    def _intact(self, name: str) -> bool:
        """Whether shard ``name``'s array still matches the checksum in its name (hashed once per
        process); a shard that does not is moved aside and forgotten."""
        if name in self._verified:
            return True
        assert self.folder is not None
        array_file = self.folder / f"{name}.npy"
        try:
            intact = file_sha256(array_file).startswith(name.rsplit("-", 1)[1])
        except OSError:
            intact = False
        if intact:
            self._verified.add(name)
            return True
        quarantine(self.folder / f"{name}.index.json", "its array does not match its checksum",
                   companions=[array_file])
        self._arrays.pop(name, None)
        self._index = {k: v for k, v in self._index.items() if v[0] != name}
        return False

    def __len__(self) -> int:
        return len(self._index) + len(self._pending)

    def __contains__(self, key: str) -> bool:
        if key in self._pending:
            return True
        entry = self._index.get(key)
        return entry is not None and self._intact(entry[0])

    def get(self, key: str) -> tuple[np.ndarray, float] | None:
        """(array, recorded compute seconds) or None."""
        if key in self._pending:
            return self._pending[key]
        entry = self._index.get(key)
        if entry is None or not self._intact(entry[0]):
            return None
        name, offset, rows, seconds = entry
        return self._arrays[name][offset:offset + rows], seconds

    def put(self, key: str, array: np.ndarray, seconds: float = 0.0) -> np.ndarray:
        """Store ``array`` (converted to the store's dtype); returns the stored copy, so that
        a value just computed and one read back later are identical."""
        stored = np.ascontiguousarray(array, dtype=self.dtype)
        if not self.enabled:
            return stored
        self._pending[key] = (stored, float(seconds))
        if len(self._pending) >= self.flush_every:
            self.flush()
        return stored

    def flush(self) -> None:
        """Write the pending entries as one shard (atomic: its array, then its index)."""
        if not self.enabled or self.folder is None:
            return
        written = _write_shard(self.folder, self._pending)
        if written is None:
            return
        name, entries = written
        self._seen_shards.add(name)
        self._verified.add(name)
        self._arrays[name] = np.load(self.folder / f"{name}.npy", mmap_mode="r")
        for key, (off, rows, seconds) in entries.items():
            self._index[key] = (name, off, rows, seconds)

    def nbytes(self) -> int:
        """Bytes of arrays held (on disk and pending)."""
        return int(sum(self._arrays[n][o:o + r].nbytes for n, o, r, _ in self._index.values())
                   + sum(a.nbytes for a, _ in self._pending.values()))


#: a shard's name: creation time (hex ns), process id, the first 32 hex digits of its array file's sha256
_SHARD = re.compile(r"^[0-9a-f]+-\d+-[0-9a-f]{32}$")


def _shard_index(path: Path) -> dict[str, tuple[int, int, float]]:
    """A shard's index file, checked to be one: ``{key: [offset, rows, seconds]}``."""
    entries = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(entries, dict):
        raise ValueError("not a shard index (expected a JSON object of key -> [offset, rows, seconds])")
    for key, value in entries.items():
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) and v >= 0 for v in value[:2])
                and isinstance(value[2], (int, float))):
            raise ValueError(f"not a shard index (entry {key!r} is not [offset, rows, seconds])")
    return {k: (v[0], v[1], float(v[2])) for k, v in entries.items()}


def _write_shard(folder: Path, pending: dict) -> tuple[str, dict] | None:
    """Write ``pending`` (key -> (array, seconds)) into ``folder`` as one shard and empty it;
    returns (shard name, index) or None when there was nothing to write."""
    if not pending:
        return None
    keys = list(pending)
    entries, offset = {}, 0
    for key in keys:
        rows = int(pending[key][0].shape[0])
        entries[key] = (offset, rows, round(pending[key][1], 6))
        offset += rows
    buffer = io.BytesIO()
    np.save(buffer, np.concatenate([pending[k][0] for k in keys]))
    payload = buffer.getvalue()
    name = f"{time.time_ns():x}-{os.getpid()}-{hashlib.sha256(payload).hexdigest()[:32]}"
    with atomic_path(folder / f"{name}.npy", suffix=".npy") as tmp:
        tmp.write_bytes(payload)
    with atomic_path(folder / f"{name}.index.json") as tmp:
        tmp.write_text(json.dumps(entries))
    pending.clear()
    return name, entries
