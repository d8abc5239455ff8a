"""Pipeline specs as text: ``"bm25%1000>>ce%100>>listwise%20"``.

Names are first stages (bm25, dense, hybrid) or registered rerankers. A first stage directly
followed by a reranker without ``%k`` is cut to :data:`DEFAULT_CANDIDATES`.

Usage::

    pipeline = parse_pipeline("hybrid>>ce")                 # == hybrid() % 100 >> load_reranker("ce")
    pipeline = parse_pipeline("hybrid>>ce", device="cuda")  # every model-holding stage on the GPU
"""
from __future__ import annotations

import inspect
import re
from typing import Callable

from .core.stage import Cascade, Cutoff, FirstStage, Stage, as_stage
from .first_stage import BM25, Dense, hybrid
from .rerankers import REGISTRY, load_reranker

#: candidates a first stage hands to the first reranker when the spec gives no ``%k``
DEFAULT_CANDIDATES = 100
FIRST_STAGES: dict[str, Callable[[], FirstStage]] = {"bm25": BM25, "dense": Dense, "hybrid": hybrid}
_PART = re.compile(r"^\s*([A-Za-z][\w.-]*)\s*(?:%\s*(\d+))?\s*$")


def first_stage_by_name(name: str) -> FirstStage:
    if name not in FIRST_STAGES:
        raise ValueError(f"unknown first stage {name!r}: use one of {', '.join(FIRST_STAGES)}")
    return FIRST_STAGES[name]()


def build(factory: Callable, device: str | None = None):
    """``factory()``, given ``device`` when one is asked for and the factory takes it (BM25 holds no model)."""
    if device is None:
        return factory()
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return factory()
    takes = any(p.name == "device" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return factory(device=device) if takes else factory()


def parse_pipeline(spec: str, shared: dict[str, Stage] | None = None, device: str | None = None) -> Stage:
    """Build the stage a spec names. ``shared`` reuses stages built for earlier specs (and so
    their loaded models, indices and embeddings); ``device`` goes to every stage built here that
    holds a model (None: each stage's default, ``"auto"``)."""
    shared = {} if shared is None else shared
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
        if name not in shared:
            if name in FIRST_STAGES:
                shared[name] = build(FIRST_STAGES[name], device)
            elif name in REGISTRY:
                shared[name] = as_stage(load_reranker(name, device=device))
            else:
                raise ValueError(f"unknown stage {name!r} in {spec!r}; first stages: {', '.join(FIRST_STAGES)}; "
                                 f"rerankers: {', '.join(sorted(REGISTRY)) or 'none registered'}")
        stage = shared[name]
        if depth is None and i == 0 and len(parts) > 1:
            depth = DEFAULT_CANDIDATES
        if depth is not None and int(depth) < 1:
            raise ValueError(f"depth must be a positive integer in {part.strip()!r} of {spec!r}")
        stages.append(Cutoff(stage, int(depth)) if depth is not None else stage)
    return stages[0] if len(stages) == 1 else Cascade(tuple(stages))
