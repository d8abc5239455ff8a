"""colbert-ai 0.2.22 on the CPU: checkpoints, encoders and the two patches the lab needs.

* no C++ build: ``ColBERT.loaded_extensions = True`` makes ``try_load_torch_extensions`` return
  early (we score MaxSim in torch), saving a 30 s compile and a compiler dependency;
* query augmentation off, one way for inference and training alike
  (:func:`query_augmentation`): colbert-ai fills queries with [MASK] tokens (Khattab & Zaharia
  2020, section 3.2), which a checkpoint learns to use; for one that never learnt it (the lab
  ColBERT) padding replaces them, and padding never scores;
* training in-process: its trainer wraps the model in ``DistributedDataParallel``, which hangs
  on a CPU without a process group; :func:`single_process` swaps in a pass-through.

Usage::

    checkpoint = load_checkpoint("colbert-ir/colbertv2.0")       # or a local folder
    with query_augmentation(False):
        Q = checkpoint.queryFromText(["what causes scurvy?"])
"""
from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager

from .models import loading, local_model_dir, model_identity, resolve_model

_LOADED: dict[tuple, object] = {}


def import_colbert():
    """(ColBERTConfig, Checkpoint), with the C++ segmented-MaxSim extension skipped and colbert-ai's
    import-time noise (faiss, setuptools) silenced: none of it concerns reranking."""
    import logging

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):  # "WARNING: faiss must be imported for indexing"
                from colbert.infra import ColBERTConfig
                from colbert.modeling.checkpoint import Checkpoint
                from colbert.modeling.colbert import ColBERT
        finally:
            logging.disable(previous)
    ColBERT.loaded_extensions = True
    return ColBERTConfig, Checkpoint


def _unaugment(result, pad_token_id: int):
    """Turn augmented positions (attention mask 0) of ``QueryTokenizer.tensorize`` output back
    into padding, which ``ColBERT.query`` zeroes."""
    if isinstance(result, list):  # tensorize(..., bsize=n): a list of (ids, mask) batches
        return [_unaugment(batch, pad_token_id) for batch in result]
    ids, mask, *rest = result
    ids = ids.clone()
    ids[mask == 0] = pad_token_id
    return (ids, mask, *rest)


@contextmanager
def query_augmentation(enabled: bool):
    """Within the block every colbert-ai ``QueryTokenizer`` pads queries instead of filling
    them with [MASK] tokens when ``enabled`` is False (an untrained body's [MASK] vectors match every
    document token and drown short queries; docs/training.md says how to compare both)."""
    if enabled:
        yield
        return
    import_colbert()
    from colbert.modeling.tokenization import QueryTokenizer

    original = QueryTokenizer.tensorize

    def tensorize(self, *args, **kwargs):
        return _unaugment(original(self, *args, **kwargs), self.pad_token_id)

    QueryTokenizer.tensorize = tensorize
    try:
        yield
    finally:
        QueryTokenizer.tensorize = original


def checkpoint_query_augmentation(path: str | os.PathLike) -> bool:
    """Whether a checkpoint was trained with [MASK] query augmentation: False only where the lab
    recipe recorded ``query_augmentation: false``; colbert-ai's default (True) for every other
    checkpoint (colbertv2.0 and friends)."""
    folder = local_model_dir(path)
    info = folder / "rerank_lab_training.json" if folder is not None else None
    if info is None or not info.exists():
        return True
    return bool(json.loads(info.read_text()).get("recipe", {}).get("query_augmentation", True))


def load_checkpoint(checkpoint: str | os.PathLike, doc_maxlen: int | None = None, query_maxlen: int | None = None,
                    bf16: bool = True, device: str = "cpu"):
    """A colbert-ai ``Checkpoint`` on ``device`` (loaded once per process and settings); ``bf16``
    casts its weights (about 1.2x faster than autocast on CPU, no per-op casts). colbert-ai itself
    moves every model to CUDA when there is one; the lab puts it where the stage asked."""
    import torch

    key = (model_identity(str(checkpoint)), doc_maxlen, query_maxlen, bf16, device)
    if key not in _LOADED:
        ColBERTConfig, Checkpoint = import_colbert()
        path = resolve_model(checkpoint)
        overrides = {k: v for k, v in {"doc_maxlen": doc_maxlen, "query_maxlen": query_maxlen}.items() if v is not None}
        config = ColBERTConfig(checkpoint=path, gpus=0, **overrides)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = loading(checkpoint, Checkpoint, path, colbert_config=config, verbose=0)
        loaded.amp_manager.activated = False  # CUDA autocast; bf16 is ours
        loaded.to(device)
        if bf16:
            loaded.to(torch.bfloat16)
        _LOADED[key] = loaded
    return _LOADED[key]


@contextmanager
def colbert_device(device: str):
    """Within the block colbert-ai's trainer and models use ``device`` (it otherwise takes CUDA
    whenever there is one: a module-level ``DEVICE``)."""
    import importlib

    import torch

    import_colbert()
    modules = [importlib.import_module(m) for m in ("colbert.parameters", "colbert.training.training",
                                                     "colbert.modeling.base_colbert", "colbert.modeling.colbert")]
    saved = [m.DEVICE for m in modules]
    for m in modules:
        m.DEVICE = torch.device(device)
    try:
        yield
    finally:
        for m, value in zip(modules, saved):
            m.DEVICE = value


@contextmanager
def single_process():
    """Replace DistributedDataParallel with a pass-through: one CPU process, no process group."""
    import torch

    original = torch.nn.parallel.DistributedDataParallel
    torch.nn.parallel.DistributedDataParallel = _PassThrough  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        torch.nn.parallel.DistributedDataParallel = original


class _PassThrough:
    """``_PassThrough(module, ...)`` is ``module`` itself; still a class, because libraries
    (accelerate) use DistributedDataParallel in ``isinstance`` checks."""

    def __new__(cls, module, *args, **kwargs):
        return module


def openvino_doc_encoder(checkpoint, identity: str, mode: str = "exact", batch_size: int = 32):
    """colbert-ai's ``docFromText(..., keep_dims=False)`` with the BERT body run by OpenVINO's fused
    kernels (about 1.3-1.5x torch eager fp32 on a 2-core AVX2 CPU): same tokenisation ([D] marker
    after [CLS], ``doc_maxlen``), same linear projection, punctuation skiplist, padding removal and
    L2 normalisation. Returns ``encode(texts) -> list of (tokens, dim) float32 arrays``."""
    import numpy as np

    from .batching import length_batches, pad_batch
    from . import openvino

    import copy

    tokenizer = checkpoint.doc_tokenizer
    # converted from an fp32 copy: .float() on the shared checkpoint would change its query encoder mid-run
    body = copy.deepcopy(checkpoint.bert).float()
    request = openvino.compile_request(body, tokenizer.tok, f"{identity}:colbert-doc-body", mode)
    weight = checkpoint.linear.weight.detach().float().numpy().T      # (hidden, dim)
    skip = set(checkpoint.skiplist) | {checkpoint.pad_token}
    marker, max_length = tokenizer.D_marker_token_id, checkpoint.colbert_config.doc_maxlen - 1

    def encode(texts: list[str]) -> list[np.ndarray]:
        enc = tokenizer.tok(list(texts), padding=False, truncation="longest_first", max_length=max_length)
        ids = [row[:1] + [marker] + row[1:] for row in enc["input_ids"]]
        features = [{"input_ids": row, "attention_mask": [1] * len(row), "token_type_ids": [0] * len(row)} for row in ids]
        out: list = [None] * len(texts)
        for idx in length_batches([len(row) for row in ids], batch_size):
            batch = pad_batch([features[i] for i in idx], checkpoint.pad_token, multiple=16)
            hidden = request.infer({k: v.numpy() for k, v in batch.items()})[0]
            projected = hidden @ weight
            for row, i in enumerate(idx):
                keep = [t not in skip for t in ids[i]]
                vectors = projected[row, : len(ids[i])][keep]
                out[i] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
        return out

    return encode
