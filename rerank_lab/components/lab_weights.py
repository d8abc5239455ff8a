"""The lab's committed weights: where they live, the command that makes them, and the one
tuning record (``tuning.json``) every trained family reads and :mod:`rerank_lab.train.tune` writes.

``tuning.json`` holds what the tuner chose on train/dev splits (never test): how to mix the
reranker with its first stage (``alpha``), how deep to rerank (``rerank_depth``), the scorer
settings it picked (e.g. ``passages``), plus every setting it tried with its quality and cost.

Usage::

    tuning = read_tuning(LAB_CE_DIR)       # Tuning(alpha=0.25, rerank_depth=50, scorer_settings={...})
    stage = tuned_reranker(lambda s: cross_encoder(LAB_CE_DIR, **s), LAB_CE_DIR, {"alpha": 1.0})
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.interpolate import Interpolate

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
LAB_CE_DIR = WEIGHTS / "lab-ce"
LAB_COLBERT_DIR = WEIGHTS / "colbert-minilm"
LAB_FUSION_DIR = WEIGHTS / "fusion"          # no weights: the tuned fusion weights and what they read
LAB_CE_FUSION_DIR = WEIGHTS / "ce-fusion"    # no weights: the lab cross-encoder's fusion weights (clean validation)
TRAIN_CE_COMMAND = "python -m rerank_lab.train.cross_encoder"
TRAIN_COLBERT_COMMAND = "python -m rerank_lab.train.colbert"
TUNING_FILE = "tuning.json"


@dataclass(frozen=True)
class Tuning:
    """How a trained reranker is used: ``alpha`` (1 = reranker alone), ``rerank_depth`` (None =
    every candidate) and the scorer settings the tuner chose."""

    alpha: float = 1.0
    rerank_depth: int | None = None
    scorer_settings: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict, repr=False, compare=False)


def read_tuning(folder: str | os.PathLike) -> Tuning:
    """The tuner's choice for the weights in ``folder`` (an untuned model: alpha 1, all candidates)."""
    path = Path(folder) / TUNING_FILE
    if not path.exists():
        return Tuning()
    record = json.loads(path.read_text())
    chosen = record["chosen"]
    return Tuning(float(chosen["alpha"]), chosen.get("rerank_depth"), dict(chosen.get("settings", {})), record)


def tuned_reranker(build: Callable[[dict], object], folder: str | os.PathLike, overrides: dict | None = None,
                   defaults: dict | None = None):
    """A trained family's registry default: ``build(settings)`` with the settings the tuner chose
    for ``folder`` (under ``defaults``, over which ``overrides`` win), mixed with its first stage
    at the tuned ``alpha`` over the tuned ``rerank_depth``. ``alpha=1.0, rerank_depth=None`` among
    the overrides gives the scorer alone."""
    tuning = read_tuning(folder)
    overrides = dict(overrides or {})
    alpha = overrides.pop("alpha", tuning.alpha)
    rerank_depth = overrides.pop("rerank_depth", tuning.rerank_depth)
    settings = {**(defaults or {}), **tuning.scorer_settings, **overrides}
    scorer = build(settings)
    if alpha >= 1.0 and rerank_depth is None:
        return scorer
    return Interpolate(scorer, alpha=alpha, rerank_depth=rerank_depth, label=settings.get("name") or scorer.name)


def training_record(folder: str | os.PathLike) -> dict:
    """What the training recipe recorded beside the weights (``training.json`` for the
    cross-encoder, ``rerank_lab_training.json`` for ColBERT): config, curve, device, budget."""
    for name in ("training.json", "rerank_lab_training.json"):
        path = Path(folder) / name
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError(f"no training record in {folder}: weights made outside the lab recipes")
