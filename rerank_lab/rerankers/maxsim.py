"""Zero-shot MaxSim: late interaction over a sentence encoder's raw token embeddings.

MaxSim (Khattab & Zaharia, SIGIR 2020) over the L2-normalised last-layer token embeddings of
``model`` (all tokens but padding, [CLS] and [SEP] included): no projection, no training. The
baseline a trained ColBERT must beat. Registry name ``"maxsim"``.

Usage::

    run = (hybrid() % 100 >> ZeroShotMaxSim())(dataset)
"""
from __future__ import annotations

from dataclasses import dataclass
from contextlib import nullcontext

import numpy as np
import torch

from ..components.batching import length_batches, pad_batch
from ..components.models import MINILM, load_transformer, model_identity, pick_device
from .late_interaction import LateInteraction


@dataclass(frozen=True)
class ZeroShotMaxSim(LateInteraction):
    model: str = MINILM
    doc_maxlen: int = 256
    query_maxlen: int = 64
    bf16: bool = True
    cache: bool = True
    batch_size: int = 32
    device: str = "cpu"
    name: str = "maxsim"

    def identity(self) -> dict:
        return {"family": "maxsim", "model": model_identity(self.model), "doc_maxlen": self.doc_maxlen,
                "bf16": self.bf16}

    def autocast(self):
        device = pick_device(self.device)
        return torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def _loaded(self):
        if "net" not in self._state:
            with self.loading():
                self._state["net"] = load_transformer(self.model, "none", device=pick_device(self.device))
        return self._state["net"]

    def _encode(self, texts: list[str], max_length: int) -> tuple[list[np.ndarray], list[list[int]]]:
        model, tokenizer = self._loaded()
        enc = tokenizer(texts, truncation=True, max_length=max_length)
        out: list = [None] * len(texts)
        ids_out: list = [None] * len(texts)
        device = next(model.parameters()).device
        for idx in length_batches([len(ids) for ids in enc["input_ids"]], self.batch_size):
            batch = pad_batch([{k: enc[k][i] for k in enc.keys()} for i in idx], tokenizer.pad_token_id or 0)
            with torch.no_grad(), self.autocast():
                hidden = model(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state
            hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu()
            for row, i in enumerate(idx):
                keep = batch["attention_mask"][row].bool()
                out[i] = hidden[row][keep].numpy()
                ids_out[i] = batch["input_ids"][row][keep].tolist()
        return out, ids_out

    def encode_query(self, query: str) -> torch.Tensor:
        return torch.from_numpy(self._encode([query], self.query_maxlen)[0][0])

    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        return self._encode(texts, self.doc_maxlen)[0]

    def tokens(self, query, document):
        (Q,), (q_ids,) = self._encode([query], self.query_maxlen)
        (D,), (d_ids,) = self._encode([document], self.doc_maxlen)
        tok = self._loaded()[1].convert_ids_to_tokens
        return tok(q_ids), tok(d_ids), torch.from_numpy(Q), D


def zero_shot(model: str = MINILM, **kwargs) -> ZeroShotMaxSim:
    """Registry factory ``"maxsim"``: zero-shot MaxSim over all-MiniLM-L6-v2 token embeddings."""
    return ZeroShotMaxSim(model, **kwargs)
