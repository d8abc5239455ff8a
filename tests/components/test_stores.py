"""The shared stores: round trips, resumability, and recovery from damage."""
import os

import numpy as np
import pytest

from rerank_lab.components.stores import EmbeddingStore, KeyValueStore
from rerank_lab.core.files import CacheWarning, atomic_dir, atomic_write_text


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
