"""ColBERT MaxSim reranking with colbert-ai's encoders (Khattab & Zaharia, SIGIR 2020).

``ColBERT`` encodes with colbert-ai's ``Checkpoint`` (``queryFromText`` / ``docFromText``:
[Q]/[D] markers, [MASK] query augmentation where the checkpoint learnt it, punctuation
skiplist), from a checkpoint id (``colbert-ir/colbertv2.0``) or a local folder (hub layout); no
index, no C++ build. ``device="auto"``: CUDA when there is a GPU (bf16 weights), else the CPU, where
documents encode through OpenVINO. The registry name ``"colbert"`` is the lab-trained checkpoint
mixed with its first stage as tuned (``python -m rerank_lab.train.colbert`` builds it).

Usage::

    reranker = ColBERT("colbert-ir/colbertv2.0")          # online, by id
    run = (hybrid() % 100 >> load_reranker("colbert"))(dataset)
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from ..components import openvino
from ..components.colbert_ai import checkpoint_query_augmentation, load_checkpoint, openvino_doc_encoder, query_augmentation
from ..components.encoder import resolve_bf16, stage_device
from ..components.lab_weights import LAB_COLBERT_DIR, TRAIN_COLBERT_COMMAND, tuned_reranker
from ..components.models import model_identity
from ..components.provenance import read_provenance, stated
from .late_interaction import LateInteraction


@dataclass(frozen=True)
class ColBERT(LateInteraction):
    """ColBERT MaxSim through colbert-ai. ``doc_maxlen`` / ``query_maxlen`` override the
    checkpoint's; ``bf16`` casts the encoder's weights (embeddings are stored as fp16);
    ``augment_queries``: [MASK] query augmentation (None: what the checkpoint was trained with).
    ``bf16`` None (auto): bf16 weights where the CPU has bf16 kernels, fp32 elsewhere (emulated
    bf16 is several times slower than fp32)."""

    checkpoint: str = str(LAB_COLBERT_DIR)
    doc_maxlen: int | None = None
    query_maxlen: int | None = None
    augment_queries: bool | None = None
    bf16: bool | None = None
    backend: str = "auto"          # documents: "auto" (OpenVINO on the CPU when installed) or "torch" (colbert-ai)
    device: str = "auto"           # "auto": CUDA when there is a GPU, else the CPU
    cache: bool = True
    batch_size: int = 32
    name: str = "colbert"
    trained_on: tuple = field(default=(), compare=False)   # for a checkpoint from elsewhere: "dataset:split"

    def __post_init__(self):
        object.__setattr__(self, "checkpoint", str(self.checkpoint))
        object.__setattr__(self, "trained_on", stated(self.trained_on))
        if self.augment_queries is None:
            object.__setattr__(self, "augment_queries", checkpoint_query_augmentation(self.checkpoint))
        object.__setattr__(self, "bf16", resolve_bf16(self.bf16, self.runs_on))
        object.__setattr__(self, "backend", openvino.resolve_backend(self.backend, self.runs_on))

    @property
    def runs_on(self) -> str:
        """The device the checkpoint computes on (``device`` resolved here)."""
        return stage_device(self.device)

    def autocast(self):
        kind = self.runs_on.split(":")[0]
        return torch.autocast(kind, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    @property
    def loaded(self):
        if "checkpoint" not in self._state:
            with self.loading():
                self._state["checkpoint"] = load_checkpoint(self.checkpoint, self.doc_maxlen, self.query_maxlen,
                                                            self.bf16, self.runs_on)
        return self._state["checkpoint"]

    @property
    def config(self):
        return self.loaded.colbert_config

    def training_data(self):
        """What the checkpoint learned from: its folder's ``provenance.json`` and what was stated."""
        return (*read_provenance(self.checkpoint), *self.trained_on)

    def identity(self) -> dict:
        identity = {"family": "colbert", "model": model_identity(self.checkpoint), "doc_maxlen": self.config.doc_maxlen,
                    "dim": self.config.dim, "mask_punctuation": self.config.mask_punctuation, "bf16": self.bf16}
        if self.bf16 and self.runs_on != "cpu":  # bf16 rounds differently on a GPU; fp32 agrees across devices
            identity["device"] = self.runs_on.split(":")[0]
        return identity

    def encode_query(self, query: str) -> torch.Tensor:
        with self.autocast(), query_augmentation(bool(self.augment_queries)):
            Q = self.loaded.queryFromText([query])
        return Q[0].float().cpu()

    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        if self.backend == "openvino":
            if "doc_encoder" not in self._state:
                with self.loading():
                    self._state["doc_encoder"] = openvino_doc_encoder(
                        self.loaded, model_identity(self.checkpoint) + f":{self.config.doc_maxlen}",
                        "fast" if self.bf16 else "exact", self.batch_size)
            return self._state["doc_encoder"](texts)
        with self.autocast():
            (docs,) = self.loaded.docFromText(texts, bsize=self.batch_size, keep_dims=False)
        return [d.float().numpy() for d in docs]

    def tokens(self, query, document):
        ck = self.loaded
        with query_augmentation(bool(self.augment_queries)):
            q_ids, q_mask = ck.query_tokenizer.tensorize([query])
        d_ids, d_mask = ck.doc_tokenizer.tensorize([document])
        with torch.no_grad(), self.autocast():
            Q = ck.query(q_ids, q_mask)[0].float().cpu()
            D = ck.doc(d_ids, d_mask, keep_dims=True)[0].float().cpu()
        keep = torch.tensor(ck.mask(d_ids, skiplist=ck.skiplist)[0])
        tok = ck.raw_tokenizer.convert_ids_to_tokens
        if not self.augment_queries:  # padding carries no vector: leave it out of the heatmap
            real = q_mask[0].bool()
            q_ids, Q = q_ids[:, real], Q[real]
        q_tokens = _marked(tok(q_ids[0].tolist()), self.config.query_token_id, self.config.query_token)
        d_tokens = _marked(tok(d_ids[0][keep].tolist()), self.config.doc_token_id, self.config.doc_token)
        return q_tokens, d_tokens, Q, D[keep].numpy()


def _marked(tokens: list[str], raw: str, shown: str) -> list[str]:
    return [shown if t == raw else t for t in tokens]


def colbert(checkpoint: str | os.PathLike | None = None, **overrides):
    """Registry factory ``"colbert"``: the lab-trained ColBERT (MiniLM body + 384-d projection)
    mixed with its first stage at the tuned ``alpha`` (``tuning.json``), unless ``checkpoint``
    is given (then plain MaxSim). ``alpha=1.0`` gives pure MaxSim; other keywords go to :class:`ColBERT`."""
    if checkpoint is not None:
        return ColBERT(str(checkpoint), **overrides)
    if not (LAB_COLBERT_DIR / "artifact.metadata").exists():
        raise FileNotFoundError(
            f"the lab-trained ColBERT checkpoint is missing ({LAB_COLBERT_DIR}). Build it with "
            f"`{TRAIN_COLBERT_COMMAND}` (about 15 min on a 2-core CPU), or pass a checkpoint: "
            f"colbert('colbert-ir/colbertv2.0').")
    return tuned_reranker(lambda settings: ColBERT(str(LAB_COLBERT_DIR), **settings), LAB_COLBERT_DIR, overrides)
