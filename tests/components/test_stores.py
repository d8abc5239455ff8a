"""The shared stores and file habits: round trips, resumability, checksums and recovery from damage,
no cache when caching is off, and files created with the umask's mode without touching the umask."""
import gc
import hashlib
import json
import os

import numpy as np
import pytest

from rerank_lab.components.stores import EmbeddingStore, KeyValueStore
from rerank_lab.core.files import (CacheWarning, UnwritablePath, atomic_dir, atomic_path, atomic_write_text,
                                   writable)


def test_key_value_round_trip_across_instances(tmp_path):
    path = tmp_path / "kv.sqlite"
    store = KeyValueStore(path)
    store.put_many({"a": (0.5, 0.01), "b": ('{"text": "x"}', 2.0)})
    again = KeyValueStore(path)  # a new process would see the same
    assert again.get_many(["a", "b", "c"]) == {"a": (0.5, 0.01), "b": ('{"text": "x"}', 2.0)}
    assert len(again) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_sqlite_is_moved_aside_and_recomputed(tmp_path, damage):
    path = tmp_path / "kv.sqlite"
    store = KeyValueStore(path)
    store.put_many({f"k{i}": (float(i), 0.1) for i in range(2000)})
    store.close_connection()
    data = path.read_bytes()
    path.write_bytes(b"this is not a database" * 100 if damage == "garbage" else data[: len(data) // 3] + b"\0" * 4096)
    fresh = KeyValueStore(path)
    with pytest.warns(CacheWarning, match="damaged cache"):
        found = fresh.get_many([f"k{i}" for i in range(2000)])
        fresh.put_many({"k1": (1.0, 0.1)})
    assert all(v == (float(int(k[1:])), 0.1) for k, v in found.items())  # never a wrong value
    assert fresh.get_many(["k1"]) == {"k1": (1.0, 0.1)}
    assert any(p.name.startswith("kv.sqlite.damaged-") for p in tmp_path.iterdir())


def test_embedding_store_flushes_reloads_and_drops_a_damaged_shard(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    store = EmbeddingStore("test", flush_every=2)
    a, b, c = (np.random.default_rng(i).normal(size=(i + 2, 4)) for i in range(3))
    stored = store.put("a", a, seconds=0.5)
    assert stored.dtype == np.float16 and np.allclose(stored, a, atol=1e-2)
    store.put("b", b, seconds=0.25)  # second put: flushed as one shard
    store.put("c", c)
    store.flush()
    again = EmbeddingStore("test")
    arr, seconds = again.get("a")
    assert np.array_equal(arr, stored) and seconds == 0.5 and len(again) == 3
    shard = sorted((tmp_path / "embeddings" / "test").glob("*.npy"))[0]
    shard.write_bytes(shard.read_bytes()[:64])  # a shard cut short by a crash or a full disk
    with pytest.warns(CacheWarning):
        damaged = EmbeddingStore("test")
    assert damaged.get("a") is None and damaged.get("c") is not None  # only that shard's entries are gone


def test_atomic_dir_replaces_whole_or_keeps_old(tmp_path):
    target = tmp_path / "weights"
    with atomic_dir(target, replace=True) as staging:
        (staging / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, replace=True) as staging:
            (staging / "a.txt").write_text("half")
            raise RuntimeError("killed mid-write")
    assert (target / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["weights"]
    with atomic_dir(target, replace=True) as staging:
        (staging / "b.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    atomic_write_text(tmp_path / "x.txt", "one")
    with pytest.raises(TypeError):
        atomic_write_text(tmp_path / "x.txt", 42)  # type: ignore[arg-type]
    assert (tmp_path / "x.txt").read_text() == "one" and len(list(tmp_path.iterdir())) == 1


def _shard(folder):
    (npy,) = folder.glob("*.npy")
    return npy, npy.with_name(npy.name[: -len(".npy")] + ".index.json")


def test_a_shard_whose_payload_changed_under_its_header_is_detected_before_use(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    store = EmbeddingStore("test", dtype=np.float32)
    stored = store.put("a", np.arange(64, dtype=np.float32).reshape(16, 4), seconds=0.5)
    store.flush()
    npy, index = _shard(tmp_path / "embeddings" / "test")
    assert npy.name.split("-")[-1][:-4] == hashlib.sha256(npy.read_bytes()).hexdigest()[:32]
    data = bytearray(npy.read_bytes())
    data[len(data) // 2: len(data) // 2 + 8] = b"AAAAAAAA"  # the header (shape, dtype) still reads
    npy.write_bytes(bytes(data))
    reopened = EmbeddingStore("test", dtype=np.float32)
    assert "a" in reopened._index  # the index looks fine; the array is what changed
    with pytest.warns(CacheWarning, match="does not match its checksum") as warned:
        assert reopened.get("a") is None and "a" not in reopened
    assert len(warned) == 1 and not npy.exists() and not index.exists()  # one line for the shard's two files
    reopened.put("a", stored, 0.5)
    reopened.flush()
    assert np.array_equal(EmbeddingStore("test", dtype=np.float32).get("a")[0], stored)


@pytest.mark.parametrize("index_text", ['{"unexpected": 1}', '[1, 2]', '{"a": [0, -1, 0.0]}', '{"a": [0, 2]}'])
def test_a_foreign_shard_index_is_moved_aside_not_raised(tmp_path, monkeypatch, index_text):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    store = EmbeddingStore("test")
    store.put("a", np.ones((2, 4)))
    store.flush()
    _, index = _shard(tmp_path / "embeddings" / "test")
    index.write_text(index_text)
    with pytest.warns(CacheWarning, match="not a shard index"):
        reopened = EmbeddingStore("test")
    assert reopened.get("a") is None and len(reopened) == 0


def test_pending_entries_reach_the_disk_when_the_store_is_collected(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    store = EmbeddingStore("test", flush_every=512)
    store.put("a", np.ones((3, 4)), seconds=0.25)
    del store
    gc.collect()
    arr, seconds = EmbeddingStore("test").get("a")
    assert arr.shape == (3, 4) and seconds == 0.25


def test_shards_without_a_checksum_in_their_name_are_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    folder = tmp_path / "embeddings" / "test"
    folder.mkdir(parents=True)
    np.save(folder / "18eea4f8a86b9408-10718.npy", np.ones((2, 4), dtype=np.float16))
    (folder / "18eea4f8a86b9408-10718.index.json").write_text(json.dumps({"a": [0, 2, 0.1]}))
    assert EmbeddingStore("test").get("a") is None


def test_no_cache_keeps_nothing_on_disk_or_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    store = EmbeddingStore("off", enabled=False, flush_every=1)
    stored = store.put("a", np.ones((3, 4)), seconds=1.0)
    assert stored.dtype == np.float16 and stored.shape == (3, 4)  # the value is still what a cache would hold
    store.flush()
    assert store.get("a") is None and "a" not in store and len(store) == 0 and store.nbytes() == 0
    assert not (tmp_path / "embeddings" / "off").exists()


def test_files_get_the_umask_mode_and_the_umask_is_never_changed(tmp_path, monkeypatch):
    umask = os.umask(0o027)  # a umask other than the usual 022, set by the test, not by the code
    try:
        def refuse(_):
            raise AssertionError("os.umask called: another thread would create files with a wrong mode meanwhile")

        monkeypatch.setattr(os, "umask", refuse)
        written = atomic_write_text(tmp_path / "table.md", "x")
        with atomic_dir(tmp_path / "index") as staging:
            (staging / "a").write_text("a")
        with atomic_path(tmp_path / "array.npy", suffix=".npy") as tmp:
            tmp.write_bytes(b"x")
        monkeypatch.undo()
    finally:
        os.umask(umask)
    assert written.stat().st_mode & 0o777 == 0o640 and (tmp_path / "array.npy").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "index").stat().st_mode & 0o777 == 0o750
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("target, folder, message", [
    ("a-file/run.trec", False, "a-file is a file, not a folder"),
    ("a-dir", False, "it is a folder"),
    ("a-file", True, "it is a file, not a folder"),
])
def test_unwritable_paths_are_refused_naming_them(tmp_path, target, folder, message):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    with pytest.raises(UnwritablePath, match=message):
        writable(tmp_path / target, folder=folder)
    with pytest.raises(ValueError, match=message):  # the CLI reports it as bad input
        (atomic_dir if folder else atomic_path)(tmp_path / target).__enter__()


def test_a_cache_root_that_is_a_file_names_the_variable(tmp_path, monkeypatch):
    from rerank_lab.components.stores import cache_root

    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "a-file"))
    with pytest.raises(UnwritablePath, match="a-file: it is a file.*RERANK_LAB_CACHE"):
        cache_root()
