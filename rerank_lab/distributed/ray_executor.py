"""Scale-out on Ray (the ``ray`` extra): the same pipelines, the same Runs, more machines.

No scheduler of our own: Ray runs the work (Moritz et al., OSDI 2018).

* **Reranking** is sharded by batches of queries over a pool of actors, each holding one copy
  of the stage (one model per actor, loaded once; a GPU each where the cluster has GPUs). The
  shards' Runs are merged into one Run whose per-stage costs equal the in-process ones: items,
  per-query wall and model seconds and counters add up; ``worker_seconds`` (summed) and
  ``distributed_wall_seconds`` (elapsed) are both reported.
* **Corpus encoding** for a dense first stage is sharded with Ray Data ``map_batches`` over an
  actor pool: each chunk of documents is encoded by one actor and written to the shared
  embedding store under exactly the key an in-process run uses (atomic shards), so a later
  in-process run reads it, and memory stays one chunk per actor.
* **Faults**: an actor that dies is restarted and its shard retried (Ray's ``max_restarts`` /
  ``max_task_retries``); a shard is pure (same inputs, same Run), so the merged Run equals an
  undisturbed one, and the stores never hold half-written entries.

No address starts a local Ray on this machine; an address joins a running cluster (start one with
``ray start --head`` on a node, ``ray start --address=<head>:6379`` on the others; see
docs/scale_out.md). An address is checked first (within :data:`CONNECT_TIMEOUT` seconds: Ray
itself retries a silent address for minutes), and the executor joins its cluster before the
first stage runs, whatever the stage. Workers must see the same ``RERANK_LAB_DATA`` and ``RERANK_LAB_CACHE`` paths
(a shared filesystem on a cluster).

Usage::

    executor = RayExecutor()                                  # or RayExecutor("ray://head:10001")
    Experiment(dataset, ["hybrid", "hybrid>>ce"], executor=executor).run()
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..core.cost import StageCost, add_counters
from ..core.data import Corpus, Queries
from ..core.run import Run
from ..core.stage import Cascade, Cutoff, FirstStage, Stage


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError("the Ray executor needs Ray: `pip install 'rerank-lab[ray]'`") from None
    return ray


#: seconds allowed to reach a cluster's address before giving up with a clear error
CONNECT_TIMEOUT = 10.0


class RayAddressError(ValueError):
    """A Ray address that is malformed or where nothing answers; the message says what to do."""


def check_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse ``address`` (``host:port`` or ``ray://host:port``; ``"auto"`` is left to Ray) unless
    something accepts a connection there within ``timeout`` seconds."""
    if address == "auto":
        return
    what_to_do = ("give HOST:PORT of a running cluster's head (started with `ray start --head`), e.g. "
                  "10.0.0.5:6379 or ray://10.0.0.5:10001, or leave ADDRESS out (`--ray`) for a local Ray")
    try:
        parts = urlsplit(address if "://" in address else f"//{address}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or port is None or parts.path or parts.query:
        raise RayAddressError(f"Ray address {address!r} is not an address: {what_to_do}")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RayAddressError(f"cannot reach a Ray cluster at {address!r} ({reason}): {what_to_do}") from None


def executor(address: str | None = None, **kwargs) -> "RayExecutor":
    """What ``rerank-lab ... --ray [ADDRESS]`` runs on: a local Ray (no address) or the cluster at
    ``address`` (checked now, so a wrong one fails before any work)."""
    if address is not None:
        check_address(address)
    return RayExecutor(address, **kwargs)


@dataclass
class RayExecutor:
    address: str | None = None
    num_cpus: int | None = None        # local Ray only (default: this machine's cores)
    workers: int | None = None         # actors per stage (default: the cluster's CPUs, at most 8)
    queries_per_task: int = 8
    max_retries: int = 3
    gpus_per_worker: float = 0.0
    _pools: dict = field(default_factory=dict, repr=False)

    def _init(self):
        ray = _ray()
        if not ray.is_initialized():
            if self.address is not None:
                check_address(self.address)
            env = {k: os.environ[k] for k in ("RERANK_LAB_DATA", "RERANK_LAB_CACHE", "RERANK_LAB_MODEL_CACHE",
                                               "RERANK_LAB_LLM", "RERANK_LAB_LLM_BACKEND") if k in os.environ}
            ray.init(address=self.address, num_cpus=self.num_cpus if self.address is None else None,
                     include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     runtime_env={"env_vars": env})
        return ray

    @property
    def n_workers(self) -> int:
        ray = self._init()
        return self.workers or max(1, min(8, int(ray.cluster_resources().get("CPU", 1))))

    def _pool(self, stage: Stage):
        ray = self._init()
        key = id(stage)
        if key not in self._pools:
            # one stage's actors at a time: idle actors of an earlier stage would hold the CPUs
            # the new ones need, and Ray would wait for them forever
            self.release()
            actor = ray.remote(num_cpus=1, num_gpus=self.gpus_per_worker, max_restarts=self.max_retries,
                               max_task_retries=self.max_retries)(_StageActor)
            self._pools[key] = (stage, [actor.remote(stage) for _ in range(self.n_workers)])
        return self._pools[key][1]

    def actor_pids(self, stage: Stage) -> list[int]:
        """The process ids of a stage's actors (to watch them, or to test that a killed one is replaced)."""
        ray = self._init()
        return ray.get([a.pid.remote() for a in self._pool(stage)])

    def transform(self, stage: Stage, queries: Queries, corpus: Corpus, previous: Run | None = None) -> Run:
        ray = self._init()  # joined even when the stage runs here: an address is never silently ignored
        if previous is None or _is_first_stage(stage):
            for dense in _dense_inputs(stage):
                encode_corpus(dense, corpus, self)
            # a source (a first stage, a FixedRun) runs here: search is cheap once the corpus is encoded
            return stage.transform(queries, corpus, previous)
        todo = [q for q in previous.rankings if q in queries]
        shards = [todo[i:i + self.queries_per_task] for i in range(0, len(todo), self.queries_per_task)]
        pool = ray.util.ActorPool(self._pool(stage))
        start = time.perf_counter()

        def submit(actor, shard):
            needed = {d for q in shard for d in previous.doc_ids(q)}
            return actor.transform.remote({q: queries[q] for q in shard}, {d: corpus[d] for d in needed if d in corpus},
                                          previous.subset(shard))

        parts = list(pool.map(submit, shards))
        return merge(parts, previous, time.perf_counter() - start, stage.name)

    def release(self) -> None:
        """Stop every stage's actors (their CPUs and models go back to the cluster)."""
        ray = _ray()
        for _, actors in self._pools.values():
            for actor in actors:
                ray.kill(actor)
        self._pools.clear()

    def shutdown(self) -> None:
        ray = _ray()
        if ray.is_initialized():
            self.release()
            ray.shutdown()


class _StageActor:
    """One copy of a stage (its models loaded once) that reranks the shards it is given."""

    def __init__(self, stage: Stage):
        self.stage = stage

    def pid(self) -> int:
        return os.getpid()

    def transform(self, queries, corpus, previous):
        return self.stage.transform(queries, corpus, previous)


def merge(parts: list[Run], previous: Run, wall_seconds: float, name: str) -> Run:
    """The shards' Runs as one: rankings joined; each new stage's items, per-query seconds, model
    seconds and counters summed over shards, its wall seconds the ``wall_seconds`` it took here
    (the workers' sum is ``worker_seconds``: time spent in parallel is not time waited)."""
    rankings: dict = {}
    for part in parts:
        rankings.update(part.rankings)
    n_before = len(previous.costs)
    costs = list(previous.costs)
    for index in range(n_before, max((len(p.costs) for p in parts), default=n_before)):
        shard_costs = [p.costs[index] for p in parts if len(p.costs) > index]
        worker = sum(c.seconds for c in shard_costs)
        costs.append(StageCost(
            shard_costs[0].stage, wall_seconds, sum(c.items_scored for c in shard_costs),
            {q: s for c in shard_costs for q, s in c.per_query_seconds.items()},
            {**add_counters(*(c.counters for c in shard_costs)), "worker_seconds": round(worker, 4),
             "distributed_wall_seconds": round(wall_seconds, 4)},
            model_seconds=sum(float(c.model_seconds or 0.0) for c in shard_costs),
            per_query_model_seconds={q: s for c in shard_costs for q, s in (c.per_query_model_seconds or {}).items()},
            device="+".join(sorted({part for c in shard_costs for part in c.device.split("+")}))))
    return Run(rankings, name, costs)


def _is_first_stage(stage: Stage) -> bool:
    if isinstance(stage, Cutoff):
        return _is_first_stage(stage.stage)
    if isinstance(stage, Cascade):
        return _is_first_stage(stage.stages[0]) and len(stage.stages) == 1
    return isinstance(stage, FirstStage)


def _dense_inputs(stage: Stage) -> list:
    from ..first_stage.dense import Dense

    stage = stage.stage if isinstance(stage, Cutoff) else stage
    if isinstance(stage, Dense):
        return [stage]
    return [s for s in getattr(stage, "inputs", ()) if isinstance(s, Dense)]


class _ChunkEncoder:
    """A Ray Data actor: one dense encoder writing chunks into the shared store, exactly as
    :meth:`Dense.corpus_embeddings` does in-process (same chunks, same keys)."""

    def __init__(self, dense):
        self.dense = dense
        self.store = dense.embedding_store()

    def __call__(self, batch):
        import numpy as np

        for texts in batch["texts"]:
            self.dense.chunk_embeddings(self.store, list(texts))
            self.store.flush()  # atomic: the shard and then its index
        return {"chunks": np.ones(len(batch["texts"]), dtype=int)}


def encode_corpus(dense, corpus: Corpus, executor: RayExecutor, workers: int | None = None) -> int:
    """Encode ``corpus`` for ``dense`` with Ray Data over an actor pool; returns the chunks encoded
    (or found). Chunks and keys are exactly those of the in-process encoder."""
    ray = executor._init()
    executor.release()  # the encoders need the CPUs that reranking actors would otherwise keep
    chunks = [{"texts": texts} for texts in dense.corpus_chunks(corpus)]
    if not chunks:
        return 0
    size = workers or executor.n_workers
    dataset = ray.data.from_items(chunks, override_num_blocks=len(chunks))  # one block per chunk, no shuffle stage
    done = dataset.map_batches(_ChunkEncoder, fn_constructor_args=(dense,), batch_size=1,
                               compute=ray.data.ActorPoolStrategy(size=min(size, len(chunks))), num_cpus=1,
                               num_gpus=executor.gpus_per_worker or None,
                               max_restarts=executor.max_retries, max_task_retries=executor.max_retries)
    return sum(1 for _ in done.iter_rows())
