"""The Ray executor on a local 2-CPU cluster: the same runs as in-process, document by document,
including when a worker is killed mid-run, and corpus shards an in-process run can read."""
import os
import signal
import threading
import time
from dataclasses import dataclass

import pytest

ray = pytest.importorskip("ray")

from rerank_lab import Experiment, evaluate, parse_pipeline  # noqa: E402
from rerank_lab.core.stage import Rerank, Scorer  # noqa: E402
from rerank_lab.distributed.ray_executor import RayExecutor, encode_corpus  # noqa: E402


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    ex = RayExecutor(num_cpus=2, workers=2, queries_per_task=2)
    ex._init()
    yield ex
    ex.shutdown()


def _same(a, b):
    assert a.rankings.keys() == b.rankings.keys()
    for q in a.rankings:
        assert a.doc_ids(q) == b.doc_ids(q)
        assert [s for _, s in a[q]] == pytest.approx([s for _, s in b[q]], abs=1e-5)


def test_toy_bm25_ce_through_ray_equals_in_process(executor, toy):
    pipeline = parse_pipeline("bm25%5>>ce")
    local = pipeline(toy)
    exp = Experiment(toy, {"bm25>>ce": pipeline}, executor=executor, progress=False).run()
    distributed = exp.runs["bm25>>ce"]
    _same(local, distributed)
    assert evaluate(distributed, toy.qrels)["ndcg@10"] == evaluate(local, toy.qrels)["ndcg@10"]
    cost = distributed.costs[-1]
    assert cost.items_scored == local.costs[-1].items_scored and cost.queries == len(toy.queries)
    assert {"worker_seconds", "distributed_wall_seconds"} <= set(cost.counters)


@dataclass(frozen=True)
class SlowOverlap(Scorer):
    """Lexical overlap, slowly, so a worker can be killed while shards are in flight."""

    name: str = "slow-overlap"

    def score(self, query, documents):
        time.sleep(0.4)
        words = set(query.lower().split())
        return [len(words & set(d.lower().split())) + len(d) * 1e-6 for d in documents]


def test_a_worker_killed_mid_run_is_replaced_and_the_run_is_unchanged(executor, scifact):
    ds = scifact.sample(16, seed=3)
    first = parse_pipeline("bm25%10")(ds)
    stage = Rerank(SlowOverlap())
    expected = stage.transform(ds.queries, ds.corpus, first)
    pids = executor.actor_pids(stage)
    killer = threading.Timer(1.0, lambda: os.kill(pids[0], signal.SIGKILL))
    killer.start()
    result = executor.transform(stage, ds.queries, ds.corpus, first)
    killer.join()
    _same(expected, result)
    assert pids[0] not in executor.actor_pids(stage)  # the dead actor was restarted in a new process


def test_corpus_shards_written_by_workers_are_read_by_an_in_process_run(executor, toy, monkeypatch):
    from rerank_lab import Dense
    from rerank_lab.first_stage import dense as dense_module

    # three chunks over the two workers: a pool as large as the cluster once deadlocked behind Ray Data's shuffle
    monkeypatch.setattr(dense_module, "CHUNK", -(-len(toy.corpus) // 3))
    dense = Dense()
    assert encode_corpus(dense, toy.corpus, executor) == 3
    monkeypatch.setattr(Dense, "encode", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-encoded")))
    monkeypatch.setattr(Dense, "_encode_documents", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-encoded")))
    ids, matrix = Dense().corpus_embeddings(toy.corpus)  # found in the store, nothing encoded here
    assert ids == list(toy.corpus) and matrix.shape == (len(toy.corpus), 384)
