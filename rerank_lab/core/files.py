"""Crash-safe writes and stable hashes: the two file habits every layer shares.

A killed process never leaves a half-written file or folder: everything is written to a
temporary sibling and renamed into place. Files and folders get the mode the user's umask
gives (``mkstemp``/``mkdtemp`` would otherwise leave 0600/0700), so a lab's results can be shared.

Usage::

    atomic_write_text("results/table.md", text)
    with atomic_dir("cache/bm25/abc") as staging:      # a folder appears complete or not at all
        (staging / "index.npy").write_bytes(...)
    stable_hash("model", 256, "query")                   # short sha256 over JSON-serialised parts
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def shareable(path: str | os.PathLike, folder: bool = False) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would have given it."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def stable_hash(*parts: object, length: int = 16) -> str:
    """A short sha256 over JSON-serialised parts (order matters, dict key order does not)."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix + ".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        shareable(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_save_npy(path: str | os.PathLike, array) -> Path:
    import numpy as np

    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)
    return Path(path)


@contextmanager
def atomic_dir(target: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; on success it becomes ``target``.

    ``replace=False`` (caches keyed by content): if another process finished ``target`` first,
    theirs is kept and the staging folder dropped. ``replace=True`` (weights, results): an
    existing ``target`` is renamed aside, the staging folder renamed into place, then the old
    one deleted, so at no moment does ``target`` hold a mix of old and new files.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield staging
        shareable(staging, folder=True)
        if replace and target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
            os.rmdir(old)
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(staging, target)
            except OSError:
                if not target.exists():  # a real failure, not another process winning the race
                    raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def quarantine(path: str | os.PathLike, reason: str) -> Path:
    """Move a damaged cache file or folder aside (``<name>.damaged-<n>``) so it is rebuilt,
    and warn once naming it. Returns where it went."""
    import warnings

    path = Path(path)
    n = 0
    while (aside := path.with_name(f"{path.name}.damaged-{n}")).exists():
        n += 1
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return aside
    warnings.warn(f"damaged cache {path} ({reason}): moved to {aside.name} and recomputing", CacheWarning, stacklevel=3)
    return aside


class CacheWarning(UserWarning):
    """A cache was damaged and has been moved aside; results are recomputed, never read from it."""
