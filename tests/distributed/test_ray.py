"""The Ray executor on a local 2-CPU cluster: the same runs as in-process, document by document,
including from a precomputed run and when a worker is killed mid-run, corpus shards an in-process
run can read, costs merged by their meaning, and addresses checked before Ray is asked."""
import socket
import os
import signal
import threading
import time
from dataclasses import dataclass

import pytest

from tests.support import required

ray = required("ray", "ray")

from rerank_lab import Experiment, FixedRun, Run, StageCost, evaluate, parse_pipeline  # noqa: E402
from rerank_lab.core.stage import Rerank, Scorer  # noqa: E402
from rerank_lab.distributed.ray_executor import (RayAddressError, RayExecutor, check_address,  # noqa: E402
                                                 encode_corpus, merge)


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


@dataclass(frozen=True)
class Overlap(Scorer):
    """Lexical overlap with a length tie-break."""

    name: str = "overlap"

    def score(self, query, documents):
        words = set(query.lower().split())
        return [len(words & set(d.lower().split())) + len(d) * 1e-6 for d in documents]


def test_a_pipeline_from_a_precomputed_run_runs_on_ray_as_in_process(executor, toy):
    saved = parse_pipeline("bm25%6")(toy)
    pipeline = FixedRun(saved, label="saved") >> Overlap()
    local = pipeline(toy)
    distributed = Experiment(toy, {"p": pipeline}, executor=executor, progress=False).run().runs["p"]
    _same(local, distributed)
    scored = sum(len(r) for r in saved.rankings.values())
    assert distributed.costs[-1].items_scored == local.costs[-1].items_scored == scored > 0


def test_merged_costs_add_items_and_model_seconds_but_not_worker_seconds_into_wall_time():
    previous = Run.from_scores({"a": {"d1": 1.0}, "b": {"d2": 1.0}})

    def shard(qid, seconds, model):
        cost = StageCost("ce", seconds, 10, {qid: seconds}, {"cache_hits": 2}, model_seconds=model,
                         per_query_model_seconds={qid: model})
        return Run.from_scores({qid: {"d": 0.5}}, costs=[cost])

    merged = merge([shard("a", 2.0, 1.5), shard("b", 3.0, 2.5)], previous, wall_seconds=3.25, name="ce").costs[-1]
    assert merged.seconds == 3.25 and merged.counters["worker_seconds"] == 5.0
    assert merged.model_seconds == 4.0 and merged.items_scored == 20 and merged.counters["cache_hits"] == 4
    assert merged.per_query("wall") == {"a": 2.0, "b": 3.0} and merged.per_query("model") == {"a": 1.5, "b": 2.5}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("address, message", [
    ("not an address", "is not an address"),
    ("host-without-port", "is not an address"),
    ("nosuchhost.invalid:6379", "cannot reach a Ray cluster at 'nosuchhost.invalid:6379'"),
    ("closed", "cannot reach a Ray cluster at '127.0.0.1:"),
])
def test_an_address_is_checked_in_seconds_with_what_to_do(address, message):
    address = f"127.0.0.1:{_closed_port()}" if address == "closed" else address
    start = time.perf_counter()
    with pytest.raises(RayAddressError, match=message) as refused:
        check_address(address, timeout=5)
    assert "ray start --head" in str(refused.value) and time.perf_counter() - start < 6
