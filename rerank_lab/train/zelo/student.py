"""A pointwise student of zELO scores: a cross-encoder that learns the fitted scores of a query's
documents (zELO, arXiv:2509.12541: the fitted Elo/Thurstone scores become pointwise targets).

The loss is listwise: the student's scores of one query's documents, softmaxed, are pulled
towards the softmax of the fitted scores divided by ``temperature`` (a KL divergence, as in
listwise distillation; Hofstätter et al. 2020). The student starts from any cross-encoder folder
(e.g. one trained on another dataset's labels) or from the MiniLM body.

Usage::

    examples = [ScoredGroup(query, documents, fitted_scores), ...]
    train_student(examples, start=MINILM, output="models/student", steps=200)
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...components.models import MINILM, pick_device
from ...components.provenance import read_provenance


@dataclass(frozen=True)
class ScoredGroup:
    """One query's documents with their target scores (fitted, or a judge's, or labels)."""

    query: str
    documents: tuple[str, ...]
    targets: tuple[float, ...]


@dataclass(frozen=True)
class StudentConfig:
    steps: int = 200
    groups_per_step: int = 4
    group_size: int = 8
    lr: float = 2e-5
    warmup: float = 0.1
    max_length: int = 256
    temperature: float = 1.0
    seed: int = 0
    bf16: bool | None = None       # None: bf16 autocast only where the hardware has it
    device: str = "auto"


def student_loss(logits, targets, temperature: float = 1.0):
    """KL(softmax(targets / temperature) || softmax(logits)), averaged over groups."""
    import torch.nn.functional as F

    return F.kl_div(F.log_softmax(logits, dim=1), F.softmax(targets / temperature, dim=1), reduction="batchmean")


def _batch(groups: Sequence[ScoredGroup], size: int, rng: random.Random):
    queries, docs, targets = [], [], []
    for g in groups:
        idx = rng.sample(range(len(g.documents)), min(size, len(g.documents)))
        while len(idx) < size:  # short groups: repeat rather than change the group size
            idx.append(rng.randrange(len(g.documents)))
        queries += [g.query] * size
        docs += [g.documents[i] for i in idx]
        targets.append([g.targets[i] for i in idx])
    return queries, docs, targets


def train_student(examples: Sequence[ScoredGroup], start: str = MINILM, output: str | Path = "student",
                  config: StudentConfig = StudentConfig(), progress: bool = True, trained_on: Sequence = ()) -> dict:
    """Train a cross-encoder from ``start`` on ``examples`` and export it to ``output``; returns the
    record. The student's provenance is ``start``'s (what the body already learned) plus
    ``trained_on`` (what ``examples`` came from)."""
    import torch
    from ...core.progress import progress_bar
    from transformers import get_linear_schedule_with_warmup

    from ...components.encoder import resolve_bf16
    from ..cross_encoder import export, new_model

    if not examples:
        raise ValueError("no scored groups to learn from: judge some queries first")
    rng = random.Random(config.seed)
    device = torch.device(pick_device(config.device))
    bf16 = resolve_bf16(config.bf16, str(device), training=True)
    model, tokenizer = new_model(start, config.seed)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(config.warmup * config.steps), config.steps)
    curve, started = [], time.perf_counter()
    for _ in progress_bar(range(config.steps), desc="training the zELO student", disable=not progress):
        groups = [examples[rng.randrange(len(examples))] for _ in range(config.groups_per_step)]
        queries, docs, targets = _batch(groups, config.group_size, rng)
        enc = tokenizer(queries, docs, truncation="longest_first", max_length=config.max_length, padding=True,
                        return_tensors="pt").to(device)   # as the reranker scores: a long query is cut, not fatal
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(**enc).logits.float().view(len(groups), -1)
        loss = student_loss(logits, torch.tensor(targets, dtype=torch.float32, device=device), config.temperature)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        curve.append(float(loss.detach()))
    record = {"recipe": "zelo-student", "start": str(start), "config": asdict(config), "groups": len(examples),
              "minutes": round((time.perf_counter() - started) / 60, 2), "curve": [round(x, 4) for x in curve],
              "device": str(device), "max_length": config.max_length,
              # the lab's cross-encoder factory reads the training length from here
              "config_for_scoring": {"max_length": config.max_length}}
    export(model, tokenizer, Path(output), {**record, "config": {**asdict(config), "max_length": config.max_length}},
           trained_on=[*read_provenance(start), *trained_on])
    return record


def final_loss(record: dict, last: int = 20) -> float:
    return float(np.mean(record["curve"][-last:])) if record["curve"] else float("nan")
