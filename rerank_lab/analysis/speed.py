"""Throughput of a scorer's model alone (no cache, no refinement): pairs per second by
precision and batch size, measured on the CPU at hand.

Usage::

    rows = pairs_per_second(LAB_CE_DIR, pairs[:256])   # [{"mode", "batch_size", "pairs_per_s"}, ...]
"""
from __future__ import annotations

import time
from typing import Sequence


def pairs_per_second(model, pairs: Sequence[tuple[str, str]], batch_sizes: Sequence[int] = (1, 8, 32),
                     modes: Sequence[str] = ("exact", "fast"), max_length: int = 256) -> list[dict]:
    """Measured pairs/second of a cross-encoder's ``predict`` per (mode, batch size); ``precision``
    says what ran (``fast`` is fp32 on a CPU without bf16 kernels)."""
    from ..rerankers.cross_encoder import CrossEncoderScorer

    rows = []
    for mode in modes:
        for batch_size in batch_sizes:
            scorer = CrossEncoderScorer(str(model), max_length=max_length, mode=mode, batch_size=batch_size)
            scorer.predict(pairs[:4])  # load and warm up
            start = time.perf_counter()
            scorer.predict(pairs)
            seconds = time.perf_counter() - start
            rows.append({"mode": mode, "precision": scorer.precision, "batch_size": batch_size,
                         "pairs_per_s": len(pairs) / seconds})
    return rows
