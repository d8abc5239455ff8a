"""Pipeline specs as text: ``"bm25%1000>>ce%100>>listwise%20"``.

Names are first stages (bm25, dense, hybrid) or registered rerankers. A first stage
directly followed by a reranker without ``%k`` is cut to ``DEFAULT_RERANK_DEPTH``.

Usage::

    pipeline = parse_pipeline("hybrid>>ce")     # == hybrid() % 100 >> load_reranker("ce")
"""
from __future__ import annotations

import re
from typing import Callable

from .first_stage import BM25, Dense, hybrid
from .pipeline import Cascade, Cutoff, FirstStage, Stage
from .rerankers import REGISTRY, load_reranker

DEFAULT_RERANK_DEPTH = 100
FIRST_STAGES: dict[str, Callable[[], FirstStage]] = {"bm25": BM25, "dense": Dense, "hybrid": hybrid}
_PART = re.compile(r"^\s*([A-Za-z][\w.-]*)\s*(?:%\s*(\d+))?\s*$")


def parse_pipeline(spec: str, cache: dict[str, Stage] | None = None) -> Stage:
    """Build the stage a spec names. ``cache`` shares built stages (and their loaded models,
    indices and embeddings) between specs."""
    cache = {} if cache is None else cache
    parts = spec.split(">>")
    stages: list[Stage] = []
    for i, part in enumerate(parts):
        match = _PART.match(part)
        if not match:
            raise ValueError(f"cannot read {part.strip()!r} in pipeline {spec!r}: write name or name%depth, "
                             f"joined by >> (e.g. 'bm25%1000>>ce%100')")
        name, depth = match.group(1), match.group(2)
        if i == 0 and name not in FIRST_STAGES:
            raise ValueError(f"pipeline {spec!r} must start with a first stage: {', '.join(FIRST_STAGES)}")
        if i > 0 and name in FIRST_STAGES:
            raise ValueError(f"{name!r} is a first stage; only rerankers may follow '>>' in {spec!r}")
        if name not in cache:
            if name in FIRST_STAGES:
                cache[name] = FIRST_STAGES[name]()
            elif name in REGISTRY:
                cache[name] = _as_stage(load_reranker(name))
            else:
                raise ValueError(f"unknown stage {name!r} in {spec!r}; first stages: {', '.join(FIRST_STAGES)}; "
                                 f"rerankers: {', '.join(sorted(REGISTRY)) or 'none registered'}")
        stage = cache[name]
        if depth is None and i == 0 and len(parts) > 1:
            depth = DEFAULT_RERANK_DEPTH
        stages.append(Cutoff(stage, int(depth)) if depth is not None else stage)
    return stages[0] if len(stages) == 1 else Cascade(stages)


def _as_stage(reranker) -> Stage:
    from .pipeline import Rerank

    return reranker if isinstance(reranker, Stage) else Rerank(reranker)
