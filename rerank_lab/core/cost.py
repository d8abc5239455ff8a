"""What a stage cost: wall time, model time, items scored, cache hits and LLM tokens.

Two clocks, because a cache makes wall time lie about a model:

* ``seconds``: wall time actually spent (cache lookups included);
* ``model_seconds``: what the stage would cost with an empty cache. Every cache records the
  compute time of each entry when it computes it; a hit adds that recorded time
  (``saved_seconds``) and its lookup time (``cache_seconds``) is taken off. Loading a model
  once (``load_seconds``) is not per-query work and is taken off too. With nothing cached the
  two clocks differ only by that.

Counters are running totals that rerankers keep (``llm_calls``, ``prompt_tokens``,
``cache_hits``, ``saved_seconds``...); a stage's cost holds their deltas over its run.

Usage::

    cost.latency(0.5)                 # median model seconds per query
    cost.latency(0.95, clock="wall")  # p95 wall seconds per query
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

Counters = Mapping[str, float]
CLOCKS = ("model", "wall")


def counter_delta(after: Counters, before: Counters) -> dict[str, float]:
    """``after - before`` for every key of ``after`` (running totals -> what one step added)."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def add_counters(*many: Counters) -> dict[str, float]:
    total: dict[str, float] = {}
    for counters in many:
        for k, v in counters.items():
            total[k] = total.get(k, 0) + v
    return total


def model_time(wall_seconds: float, counters: Counters) -> float:
    """What ``wall_seconds`` would have been with an empty cache and the model already loaded
    (see the module docstring; one-time loading is ``load_seconds``, reported apart)."""
    spent = wall_seconds - counters.get("cache_seconds", 0.0) - counters.get("load_seconds", 0.0)
    return max(spent, 0.0) + counters.get("saved_seconds", 0.0)


def _quantile(values: Iterable[float], q: float) -> float:
    import numpy as np

    values = list(values)
    return float(np.quantile(values, q)) if values else 0.0


@dataclass(frozen=True)
class StageCost:
    """What one stage spent, per query and in total, on both clocks."""

    stage: str
    seconds: float
    items_scored: int
    per_query_seconds: Mapping[str, float] = field(default_factory=dict, repr=False)
    counters: Mapping[str, float] = field(default_factory=dict)
    model_seconds: float | None = None
    per_query_model_seconds: Mapping[str, float] | None = field(default=None, repr=False)
    device: str = "cpu"              # where the stage's models computed ("cpu", "cuda", "server", joined by +)

    def __post_init__(self):
        # Stages without a cache: the model clock is the wall clock.
        if self.model_seconds is None:
            object.__setattr__(self, "model_seconds", self.seconds)
        if self.per_query_model_seconds is None:
            object.__setattr__(self, "per_query_model_seconds", dict(self.per_query_seconds))

    @property
    def queries(self) -> int:
        return len(self.per_query_seconds)

    def per_query(self, clock: str = "model") -> Mapping[str, float]:
        if clock not in CLOCKS:
            raise ValueError(f"clock must be 'model' (cost with an empty cache) or 'wall', got {clock!r}")
        return self.per_query_model_seconds if clock == "model" else self.per_query_seconds  # type: ignore[return-value]

    def latency(self, quantile: float = 0.5, clock: str = "model") -> float:
        """Per-query seconds at ``quantile`` (0.5 = median, 0.95 = p95) on ``clock``."""
        return _quantile(self.per_query(clock).values(), quantile)

    @property
    def cache_hits(self) -> int:
        return int(self.counters.get("cache_hits", 0))

    def as_dict(self) -> dict:
        counters = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.counters.items()}
        return {
            "stage": self.stage,
            "seconds": round(self.seconds, 4),
            "model_seconds": round(float(self.model_seconds or 0.0), 4),
            "items_scored": self.items_scored,
            "queries": self.queries,
            "model_median_query_seconds": round(self.latency(0.5, "model"), 5),
            "model_p95_query_seconds": round(self.latency(0.95, "model"), 5),
            "wall_median_query_seconds": round(self.latency(0.5, "wall"), 5),
            "wall_p95_query_seconds": round(self.latency(0.95, "wall"), 5),
            "device": self.device,
            **counters,
        }


def query_seconds(costs: Iterable[StageCost], clock: str = "model") -> dict[str, float]:
    """Per-query seconds summed over stages."""
    total: dict[str, float] = {}
    for cost in costs:
        for q, s in cost.per_query(clock).items():
            total[q] = total.get(q, 0.0) + s
    return total
