"""Length-bucketed batching: items of similar length share a batch, so padding stays small.

Usage::

    for batch in length_batches([len(ids) for ids in encoded], batch_size=32):
        run_model([encoded[i] for i in batch])        # longest first
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np


def length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Indices into ``lengths`` in batches of ``batch_size``, longest first (stable among equals):
    the first batch shows at once whether the longest inputs fit in memory."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def pad_width(width: int, multiple: int = 1) -> int:
    """``width`` rounded up to ``multiple`` (bucketed widths keep compiled kernels few and reused)."""
    return -(-width // multiple) * multiple


def pad_batch(features: list[dict], pad_token_id: int, multiple: int = 1, left: bool = False) -> dict:
    """Pad token-id features (``input_ids``, ``attention_mask``...) of one batch to its longest
    member rounded up to ``multiple``; torch long tensors (cheaper than ``tokenizer.pad``)."""
    import torch

    width = pad_width(max(len(f["input_ids"]) for f in features), multiple)
    out = {}
    for key in features[0]:
        fill = pad_token_id if key == "input_ids" else 0
        rows = [([fill] * (width - len(f[key])) + list(f[key])) if left else (list(f[key]) + [fill] * (width - len(f[key])))
                for f in features]
        out[key] = torch.tensor(rows, dtype=torch.long)
    return out
