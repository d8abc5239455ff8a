"""Pointwise cross-encoders: (query, document) -> relevance, through transformers.

Nogueira & Cho, "Passage Re-ranking with BERT" (2019). Any sequence-classification reranker
loads by model id or local folder (``cross-encoder/ms-marco-MiniLM-L-6-v2``,
``BAAI/bge-reranker-base``, the lab model); a 1-logit head scores with its logit, a 2-logit
head with the log-probability of the "relevant" class. In ``mode="exact"`` scores equal
sentence-transformers ``CrossEncoder.predict`` (same tokenisation, ``longest_first``
truncation) to 1e-4. ``fast`` is bf16, ``int8`` int8 weights and activations (see
:mod:`rerank_lab.components.openvino`); both settle close calls at the top in fp32
(:class:`~rerank_lab.components.refine.Refine`). Caching, passages and refinement are the
shared wrappers; this file holds the model and the factories.

``device="auto"``: CUDA when there is a GPU (torch; ``fast`` is bf16 there), else the CPU through
OpenVINO, as before. Exact (fp32) scores agree across devices to ~1e-5 and share the score cache;
``fast`` and ``int8`` scores are keyed by runtime and device.

Usage::

    ce = cross_encoder("cross-encoder/ms-marco-MiniLM-L-6-v2", mode="fast")   # online, by id
    ce.score("what is bm25", ["BM25 is a ranking function ...", "Paris is ..."])
    run = (hybrid() % 100 >> ce)(dataset)
    lab = lab_cross_encoder()       # the lab-trained model mixed with its first stage, registered as "ce"
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..components import openvino
from ..components.batching import length_batches, pad_batch
from ..components.cached import Cached
from ..components.lab_weights import LAB_CE_DIR, TRAIN_CE_COMMAND, tuned_reranker
from ..components.encoder import identity_precision, stage_device
from ..components.models import load_tokenizer, load_transformer, model_identity
from ..components.passages import AGGREGATIONS, Passages, window_starts
from ..components.provenance import read_provenance, stated
from ..components.refine import Refine
from ..core.stage import Scorer

MODES = openvino.MODES
# fast/int8: neighbours closer than this among the top 10 are re-scored in fp32. Chosen with
# benchmarks/cross_encoder_fast_fidelity.py on NFCorpus dev and SciFact train (on an AMX CPU), never on test, as
# the smallest margin of 0.005/0.01/0.015/0.02/0.03 at which fast kept every simulated 100-query
# run within 0.002 nDCG@10 of exact on both; it re-scores about 5% of pairs at depth 20.
REFINE_MARGIN = 0.005
REFINE_TOP = 10


@dataclass(frozen=True)
class CrossEncoderScorer(Scorer):
    """The model alone: tokenise once, batch by token length, run, apply the head. No cache."""

    model: str
    max_length: int = 256
    mode: str = "exact"
    activation: str | None = None
    backend: str = "auto"
    batch_size: int = 32
    threads: int | None = None
    device: str = "auto"            # "auto": CUDA when there is a GPU, else the CPU (OpenVINO)
    name: str = "cross_encoder"
    trained_on: tuple = field(default=(), compare=False)

    def __post_init__(self):
        object.__setattr__(self, "model", str(self.model))
        object.__setattr__(self, "trained_on", stated(self.trained_on))
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.activation not in (None, "sigmoid", "softmax"):
            raise ValueError(f"unknown activation {self.activation!r}: use None, 'sigmoid' (1 logit) or "
                             f"'softmax' (2 logits)")
        object.__setattr__(self, "backend", openvino.resolve_backend(self.backend, self.runs_on))
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8 tokens, got {self.max_length}")

    @property
    def runs_on(self) -> str:
        """The device the model computes on (``device`` resolved here)."""
        return stage_device(self.device, self.mode)

    @property
    def precision(self) -> str:
        """What the scores are computed in: ``fast`` on a CPU without bf16 kernels runs fp32 in OpenVINO."""
        return openvino.effective_mode(self.mode) if self.backend == "openvino" else self.mode

    def training_data(self):
        """What the weights learned from: the folder's ``provenance.json`` and what the user stated."""
        return (*read_provenance(self.model), *self.trained_on)

    def identity(self) -> dict:
        # Exact scores agree to ~1e-5 across backends and devices: they share cached scores.
        precision = "exact" if self.precision == "exact" else \
            identity_precision(f"{self.precision}-{self.backend}", self.runs_on)
        return {"family": "cross_encoder", "model": model_identity(self.model), "max_length": self.max_length,
                "precision": precision, "activation": self.activation}

    def _loaded(self):
        state = self._state
        if "net" not in state:
            with self.loading():
                self._load(state)
        return state["net"], state["tokenizer"]

    def _load(self, state: dict) -> None:
        import torch

        net, tokenizer = load_transformer(self.model, "sequence-classification", device=self.runs_on)
        if net.config.num_labels not in (1, 2):
            raise ValueError(f"{self.model!r} has {net.config.num_labels} labels; a reranker head has 1 "
                             f"(relevance logit) or 2 (not relevant, relevant)")
        if self.backend == "openvino":
            state["openvino"] = openvino.compile_request(net, tokenizer, model_identity(self.model), self.mode,
                                                         threads=self.threads)
        elif self.mode == "fast":
            net = _copy(net).to(torch.bfloat16)
        elif self.mode == "int8":
            net = torch.ao.quantization.quantize_dynamic(_copy(net), {torch.nn.Linear}, dtype=torch.qint8)
        if self.threads:
            torch.set_num_threads(self.threads)
        state["net"], state["tokenizer"] = net, tokenizer

    @property
    def tokenizer(self):
        return self._loaded()[1]

    def passage_splitter(self, window: int | None = None, stride: int | None = None) -> "TokenWindows":
        """Windows of this model's own tokens that fit its max length with the query."""
        return TokenWindows(self.model, self.max_length, window, stride)

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return self.score_batch([(query, documents)])[0]

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """One pass over every (query, document) pair of all requests: cross-query batches."""
        pairs = [(q, "" if d is None else str(d)) for q, docs in requests for d in docs]
        scores = self.predict(pairs).tolist()
        out, start = [], 0
        for _, docs in requests:
            out.append(scores[start:start + len(docs)])
            start += len(docs)
        return out

    def predict(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Scores of (query, text) pairs: tokenised once, batched by token length. Counts
        ``pairs`` and ``truncated_pairs``."""
        import torch

        net, tokenizer = self._loaded()
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        enc = tokenizer([p[0] for p in pairs], [p[1] for p in pairs], truncation="longest_first",
                        max_length=self.max_length, padding=False)
        full = tokenizer([p[0] for p in pairs], [p[1] for p in pairs], truncation=False, verbose=False)
        self.count("pairs", len(pairs))
        self.count("truncated_pairs", sum(len(ids) > self.max_length for ids in full["input_ids"]))
        features = [{k: enc[k][i] for k in enc.keys()} for i in range(len(pairs))]
        out = np.empty(len(pairs), dtype=np.float32)
        request = self._state.get("openvino")
        with torch.inference_mode():
            for idx in length_batches([len(f["input_ids"]) for f in features], self.batch_size):
                # OpenVINO plans kernels per input shape: bucketed widths keep the plans few and reused
                batch = pad_batch([features[i] for i in idx], tokenizer.pad_token_id or 0,
                                  multiple=32 if request is not None else 1, left=tokenizer.padding_side == "left")
                if request is not None:
                    logits = torch.from_numpy(request.infer({k: v.numpy() for k, v in batch.items()})[0])
                else:
                    device = next(net.parameters()).device
                    logits = net(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
                out[idx] = self._head(logits).numpy()
        return out

    def _head(self, logits):
        import torch

        if logits.shape[1] == 1:
            s = logits[:, 0]
            return torch.sigmoid(s) if self.activation == "sigmoid" else s
        if self.activation in ("softmax", "sigmoid"):
            return torch.softmax(logits, dim=1)[:, 1]
        return torch.log_softmax(logits, dim=1)[:, 1]


def _copy(net):
    import copy

    return copy.deepcopy(net)  # the fp32 model stays shared and untouched (other stages use it)


@dataclass(frozen=True)
class TokenWindows:
    """Passage windows in a cross-encoder's own tokens, cut back to text so each pair
    tokenises as usual: ``window`` tokens (default: what fits beside the query) every
    ``stride`` (default: half a window); the last window ends at the document's end."""

    model: str
    max_length: int
    window: int | None = None
    stride: int | None = None

    def __call__(self, query: str, document: str) -> list[str]:
        tokenizer = load_tokenizer(self.model)
        budget = self.max_length - tokenizer.num_special_tokens_to_add(pair=True)
        q_len = len(tokenizer(query, add_special_tokens=False)["input_ids"])
        offsets = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True,
                            verbose=False)["offset_mapping"]
        window = self.window or max(budget - q_len, 16)
        stride = self.stride or max(window // 2, 1)
        pieces = []
        for s in window_starts(len(offsets), window, stride):
            piece = offsets[s:s + window]
            pieces.append(document[piece[0][0]:piece[-1][1]] if piece else "")
        return pieces


def cross_encoder(model: str | os.PathLike, mode: str = "exact", max_length: int = 256,
                  passages: str | None = None, passage_tokens: int | None = None, stride: int | None = None,
                  cache: bool = True, refine_margin: float | None = None, refine_top: int = REFINE_TOP,
                  activation: str | None = None, backend: str = "auto", batch_size: int = 32,
                  threads: int | None = None, device: str = "auto", name: str = "cross_encoder",
                  trained_on=()) -> Scorer:
    """A cross-encoder reranker with the shared wrappers: passage windows (``passages``: one of
    firstp/maxp/sump/meanp, or None to truncate), the disk score cache, and for ``fast`` /
    ``int8`` close calls re-scored in fp32 (``refine_margin``, default :data:`REFINE_MARGIN`; 0: off).
    ``trained_on``: the judgments a model from elsewhere learned from (``"msmarco:train"``), so
    that evaluation splits test queries into clean and contaminated (a lab folder records its own)."""
    if passages is not None and passages not in AGGREGATIONS:
        raise ValueError(f"unknown passage aggregation {passages!r}: use one of {', '.join(AGGREGATIONS)} or None")

    if refine_margin is not None and refine_margin < 0:
        raise ValueError(f"refine_margin must be >= 0 (0 turns close-call refinement off), got {refine_margin}")

    def wrapped(scorer: CrossEncoderScorer) -> Scorer:
        out: Scorer = scorer
        if passages is not None:
            out = Passages(out, passages, TokenWindows(str(model), max_length, passage_tokens, stride))
        return Cached(out) if cache else out

    approximate = CrossEncoderScorer(str(model), max_length, mode, activation, backend, batch_size, threads, device, name,
                                     trained_on)
    if approximate.precision == "exact":  # nothing to refine (also: fast on a CPU without bf16 kernels)
        return wrapped(approximate)
    margin = REFINE_MARGIN if refine_margin is None else refine_margin
    if margin == 0:
        return wrapped(approximate)
    exact = CrossEncoderScorer(str(model), max_length, "exact", activation, backend, batch_size, threads, device, name,
                               trained_on)
    return Refine(wrapped(approximate), wrapped(exact), margin, refine_top)


def lab_cross_encoder(path: str | os.PathLike = LAB_CE_DIR, **overrides):
    """The lab-trained cross-encoder (``rerank_lab/weights/lab-ce``) as its tuner chose to use
    it (``tuning.json``: interpolation weight, rerank depth, document handling, precision).
    ``alpha=1.0, rerank_depth=None`` gives the pure cross-encoder; other keyword arguments go to
    :func:`cross_encoder`."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"the lab cross-encoder weights are missing from {path}. Make them with "
                                f"`{TRAIN_CE_COMMAND}` (about 35 CPU minutes plus tuning; on a GPU see "
                                f"docs/training.md), or give a model id: "
                                f"cross_encoder('cross-encoder/ms-marco-MiniLM-L-6-v2')")
    defaults = {"mode": "fast", "name": "ce", "max_length": _trained_length(path)}
    return tuned_reranker(lambda settings: cross_encoder(str(path), **settings), path, overrides, defaults)


def _trained_length(path: Path) -> int:
    trained = path / "training.json"
    return int(json.loads(trained.read_text())["config"]["max_length"]) if trained.exists() else 256


__all__ = ["CrossEncoderScorer", "REFINE_MARGIN", "TokenWindows", "cross_encoder", "lab_cross_encoder"]
