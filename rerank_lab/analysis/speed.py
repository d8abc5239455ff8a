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


def gemm_ceiling(size: int = 1536, repeats: int = 5) -> float:
    """This CPU's fp32 matrix-multiply throughput in GFLOP/s (best of ``repeats`` square
    ``size``×``size`` products through torch's BLAS on all cores): the most any fp32 transformer
    kernel can reach here, since a transformer encoder is matrix products almost throughout."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm up the BLAS threads
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def encoder_flops(lengths: Sequence[int], layers: int, hidden: int, intermediate: int) -> float:
    """Floating-point operations of a BERT-style encoder over sequences of ``lengths`` tokens:
    per layer and token the Q/K/V/output projections (4·h²) and the feed-forward (2·h·i)
    multiply-adds, plus attention's scores and weighted sum (2·L·h); 2 FLOPs per multiply-add.
    Embeddings, norms and softmax are left out (a few percent)."""
    per_layer = sum(2 * n * (4 * hidden * hidden + 2 * hidden * intermediate) + 4 * n * n * hidden for n in lengths)
    return float(layers * per_layer)
