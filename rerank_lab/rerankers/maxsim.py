"""Zero-shot MaxSim: late interaction over a sentence encoder's raw token embeddings.

MaxSim (Khattab & Zaharia, SIGIR 2020) over the L2-normalised last-layer token embeddings of
``model`` (all tokens but padding, [CLS] and [SEP] included): no projection, no training. The
baseline a trained ColBERT must beat. Registry name ``"maxsim"``. Encodes through the shared
:class:`~rerank_lab.components.encoder.TokenEncoder` (the dense first stage's encoder) and keeps
its documents in that encoder's token store, which the dense first stage can fill as it encodes
the corpus (one forward pass for both).

Usage::

    run = (hybrid() % 100 >> ZeroShotMaxSim())(dataset)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..components.encoder import TokenEncoder, normalised, stage_device
from ..components.models import MINILM
from .late_interaction import LateInteraction


@dataclass(frozen=True)
class ZeroShotMaxSim(LateInteraction):
    model: str = MINILM
    doc_maxlen: int = 256
    query_maxlen: int = 64
    mode: str = "exact"          # "fast": bf16 where the CPU has bf16 kernels
    cache: bool = True
    batch_size: int = 32
    device: str = "auto"         # "auto": CUDA when there is a GPU, else the CPU (OpenVINO)
    name: str = "maxsim"

    def __post_init__(self):
        stage_device(self.device, self.mode)  # a device that is not here fails now, not mid-run

    @property
    def runs_on(self) -> str:
        return stage_device(self.device, self.mode)

    def _encoder(self, max_length: int) -> TokenEncoder:
        key = f"encoder{max_length}"
        if key not in self._state:
            with self.loading():
                encoder = TokenEncoder(self.model, max_length, self.mode, "auto", self.batch_size, self.device)
                encoder._loaded()
            self._state[key] = encoder
        return self._state[key]

    def identity(self) -> dict:
        return {"family": "maxsim", **self._encoder(self.doc_maxlen).identity()}

    @property
    def store(self):
        """The encoder's shared token store: a dense first stage on the same model and length
        (``Dense(keep_token_states=True)``) may already have filled it."""
        return self._encoder(self.doc_maxlen).token_store(self.cache)

    def flush(self) -> None:
        if f"encoder{self.doc_maxlen}" in self._state:  # nothing stored before the encoder ever ran
            self.store.flush()

    def encode_query(self, query: str) -> torch.Tensor:
        return torch.from_numpy(normalised(self._encoder(self.query_maxlen).encode([query])[0]))

    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        return [normalised(s) for s in self._encoder(self.doc_maxlen).encode(texts)]

    def tokens(self, query, document):
        q_enc, d_enc = self._encoder(self.query_maxlen), self._encoder(self.doc_maxlen)
        tok = q_enc._loaded()["tokenizer"].convert_ids_to_tokens
        Q = torch.from_numpy(normalised(q_enc.encode([query])[0]))
        D = normalised(d_enc.encode([document])[0])
        return tok(q_enc.token_ids(query)), tok(d_enc.token_ids(document)), Q, D


def zero_shot(model: str = MINILM, **kwargs) -> ZeroShotMaxSim:
    """Registry factory ``"maxsim"``: zero-shot MaxSim over all-MiniLM-L6-v2 token embeddings."""
    return ZeroShotMaxSim(model, **kwargs)
