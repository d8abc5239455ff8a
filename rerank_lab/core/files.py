"""Crash-safe writes, checked output paths, checksums and stable hashes: the file habits every layer shares.

A killed process never leaves a half-written file or folder: everything is written to a
temporary sibling and renamed into place. Temporary siblings are created with the mode a plain
``open``/``mkdir`` gives (0666/0777 less the user's umask, applied by the kernel), so a lab's
results can be shared; the process umask is never touched. An output path under a file, or a
folder where a file is wanted, is refused with :class:`UnwritablePath` before anything runs.
A folder written as a whole (an index, a converted graph) carries ``checksums.json``, so damage
is found before the folder is used.

Usage::

    atomic_write_text("results/table.md", text)
    with atomic_dir("cache/bm25/abc") as staging:      # a folder appears complete or not at all
        (staging / "index.npy").write_bytes(...)
        write_checksums(staging)
    checksum_problem("cache/bm25/abc")                   # None, or why the folder cannot be trusted
    writable("results/run.trec")                         # UnwritablePath if it cannot be written
    stable_hash("model", 256, "query")                   # short sha256 over JSON-serialised parts
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

CHECKSUMS = "checksums.json"


class UnwritablePath(OSError, ValueError):
    """An output or cache path that cannot be written (a parent is a file, a folder where a file is
    wanted, no permission); the message names it and says what to do."""


def writable(path: str | os.PathLike, folder: bool = False) -> Path:
    """``path`` once it can be written: its nearest existing ancestor is a folder this process may
    write in, and it is not a folder (a file is wanted) or not a file (``folder=True``)."""
    path = Path(path).expanduser()
    if folder and path.exists() and not path.is_dir():
        raise UnwritablePath(f"cannot write into {path}: it is a file, not a folder; give a folder path "
                             f"or move that file away")
    if not folder and path.is_dir():
        raise UnwritablePath(f"cannot write {path}: it is a folder; give the path of a file "
                             f"(e.g. {path / 'run.trec'})")
    for ancestor in path.absolute().parents:
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            raise UnwritablePath(f"cannot write {path}: {ancestor} is a file, not a folder; choose a path "
                                 f"outside it or move that file away")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise UnwritablePath(f"cannot write {path}: no permission to write in {ancestor}; choose a "
                                 f"folder you can write to")
        break
    return path


def make_folder(path: str | os.PathLike) -> Path:
    """``mkdir -p path`` after :func:`writable` has checked it can be made."""
    path = writable(path, folder=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _new_sibling(path: Path, suffix: str, folder: bool = False) -> Path:
    """Create a new hidden sibling of ``path`` (a file, or a folder), with the mode a plain
    ``open``/``mkdir`` would give it: the kernel applies the umask to 0666/0777."""
    for _ in range(100):
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            if folder:
                os.mkdir(candidate, 0o777)
            else:
                os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary sibling of {path}: 100 names taken")


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
    path = writable(path)
    make_folder(path.parent)
    tmp_path = _new_sibling(path, suffix + ".tmp")
    try:
        yield tmp_path
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
    target = writable(target, folder=True)
    make_folder(target.parent)
    staging = _new_sibling(target, ".tmp", folder=True)
    try:
        yield staging
        if replace and target.exists():
            old = _new_sibling(target, ".old", folder=True)
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


def write_checksums(folder: str | os.PathLike) -> None:
    """Record the sha256 of every file directly in ``folder`` in its ``checksums.json`` (write it last)."""
    folder = Path(folder)
    sums = {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUMS}
    (folder / CHECKSUMS).write_text(json.dumps(sums, indent=1))


def checksum_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` cannot be trusted (its ``checksums.json`` missing or unreadable, a file
    missing, or a file whose sha256 differs), or None when every recorded file is intact."""
    folder = Path(folder)
    try:
        sums = json.loads((folder / CHECKSUMS).read_text())
    except (OSError, ValueError) as exc:
        return f"no readable {CHECKSUMS} ({type(exc).__name__})"
    if not isinstance(sums, dict) or not sums or not all(isinstance(v, str) for v in sums.values()):
        return f"{CHECKSUMS} is not a map of file names to sha256 digests"
    for name, digest in sums.items():
        try:
            if file_sha256(folder / name) != digest:
                return f"{name} does not match its checksum"
        except OSError:
            return f"{name} is missing"
    return None


def quarantine(path: str | os.PathLike, reason: str, companions: Iterable[str | os.PathLike] = ()) -> Path:
    """Move a damaged cache file or folder aside (``<name>.damaged-<n>``), with the files that
    belong to it (``companions``: a shard's array beside its index), so it is rebuilt, and warn
    once, in one line, naming it. Returns where ``path`` went."""
    import warnings

    path = Path(path)
    aside = _aside(path)
    moved = False
    for item in (path, *map(Path, companions)):
        try:
            os.rename(item, aside if item == path else _aside(item))
            moved = True
        except FileNotFoundError:
            continue
    if moved:
        warnings.warn(f"damaged cache {path} ({reason}): moved aside as {aside.name}, recomputing",
                      CacheWarning, stacklevel=3)
    return aside


def _aside(path: Path) -> Path:
    n = 0
    while (aside := path.with_name(f"{path.name}.damaged-{n}")).exists():
        n += 1
    return aside


class CacheWarning(UserWarning):
    """A cache was damaged and has been moved aside; results are recomputed, never read from it."""
