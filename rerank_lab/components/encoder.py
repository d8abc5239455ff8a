"""A transformer body as a text encoder: token states for a list of texts, batched by length,
through OpenVINO or torch. Dense retrieval mean-pools them; zero-shot MaxSim keeps them.

Precision follows the CPU: ``exact`` is fp32; ``fast`` is bf16 where the CPU has bf16 kernels
(AVX512-BF16 or AMX) and fp32 elsewhere, since emulated bf16 runs 3-4x *slower* than fp32 on a
CPU without them (measured on the 2-core AMD EPYC with AVX2 only: torch bf16 autocast 0.25-0.32x
sentence-transformers' fp32 encode). ``int8`` runs OpenVINO's int8 weights with dynamic int8
activations (as the cross-encoder's ``int8``; cosine to fp32 > 0.999): it pays only where the CPU has
int8 dot-product kernels (VNNI or AMX); on the AVX2-only EPYC it was 6% *slower* than fp32.

Devices: ``device="auto"`` runs on CUDA when there is a GPU (torch; ``fast`` is then bf16), else on
the CPU through OpenVINO. ``int8`` is a CPU kernel: ``auto`` keeps it on the CPU. fp32 states agree
across devices and runtimes to ~1e-6, so they share one cache; bf16 and int8 ones off the CPU are
keyed apart (:func:`identity_precision`).

Usage::

    encoder = TokenEncoder(MINILM, max_length=256)
    states = encoder.encode(["a text", "another"])     # list of (tokens, dim) float32 arrays
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import openvino
from .batching import length_batches, pad_batch
from .models import load_transformer, model_identity, pick_device


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles for bf16 (Sapphire Rapids and later), from /proc/cpuinfo."""
    try:
        return " amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def resolve_bf16(bf16: bool | None, device: str = "cpu", training: bool = False) -> bool:
    """``None`` (auto): bf16 on a GPU or a CPU with bf16 kernels, fp32 elsewhere. For training on a
    CPU, only AMX counts: an AVX512-BF16 Xeon without AMX ran a training step 1.25x slower under
    bf16 autocast than in fp32 (``benchmarks/train_step.py``), an AVX2 EPYC 15x slower."""
    if bf16 is not None:
        return bf16
    if pick_device(device) != "cpu":
        return True
    return cpu_has_amx() if training else cpu_has_bf16()


def stage_device(device: str | None, mode: str = "exact") -> str:
    """Where a stage computes: ``auto`` is the GPU when there is one, except for ``int8`` (CPU
    kernels: OpenVINO or torch dynamic quantisation), which stays on the CPU; an int8 stage named
    onto a GPU is refused."""
    if mode == "int8":
        if device in (None, "auto"):
            return "cpu"
        if pick_device(device) != "cpu":
            raise ValueError(f"mode='int8' runs on the CPU only (OpenVINO or torch dynamic int8), not on "
                             f"{device!r}: use mode='fast' (bf16) on a GPU, or device='cpu'")
    return pick_device(device)


def identity_precision(precision: str, device: str) -> str:
    """``precision`` as cache identities record it: fp32 results agree across devices to ~1e-5 (as
    across runtimes) and share caches; reduced precision rounds differently on a GPU, so it carries
    the device type (``bf16@cuda``)."""
    kind = device.split(":")[0]
    return precision if precision in ("fp32", "exact") or kind == "cpu" else f"{precision}@{kind}"


@dataclass(frozen=True)
class TokenEncoder:
    """Last-layer token states of ``model`` for texts cut to ``max_length`` tokens."""

    model: str
    max_length: int = 256
    mode: str = "exact"          # "exact" (fp32), "fast" (bf16 where the CPU has it) or "int8" (OpenVINO)
    backend: str = "auto"        # "auto": OpenVINO on the CPU when installed, else torch
    batch_size: int = 64
    device: str = "auto"         # "auto": CUDA when there is a GPU, else the CPU
    _state: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def runs_on(self) -> str:
        """The device the states are computed on (``device`` resolved here)."""
        return stage_device(self.device, self.mode)

    @property
    def runtime(self) -> str:
        if self.runs_on != "cpu":
            return "torch"
        return openvino.resolve_backend(self.backend)

    @property
    def precision(self) -> str:
        if self.mode == "int8":
            return "int8"
        if self.mode == "fast":
            if self.runs_on != "cpu":
                return "bf16"
            if cpu_has_bf16() if self.runtime == "torch" else openvino.supports("BF16"):
                return "bf16"
        return "fp32"

    def identity(self) -> dict:
        """What the states depend on (runtimes and devices agree to ~1e-6 in fp32, so they share it)."""
        return {"model": model_identity(self.model), "max_length": self.max_length,
                "precision": identity_precision(self.precision, self.runs_on)}

    def _loaded(self):
        if "net" not in self._state:
            net, tokenizer = load_transformer(self.model, "none", device=self.runs_on)
            if self.precision == "int8" and self.runtime == "torch":
                import torch

                net = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
            self._state["tokenizer"], self._state["net"] = tokenizer, net
            if self.runtime == "openvino":
                self._state["request"] = openvino.compile_request(
                    net, tokenizer, model_identity(self.model) + ":encoder",
                    {"bf16": "fast", "int8": "int8"}.get(self.precision, "exact"))
        return self._state

    def tokenize(self, texts: list[str]) -> dict:
        return self._loaded()["tokenizer"](texts, truncation=True, max_length=self.max_length)

    def encode(self, texts: list[str], pooled: bool = False) -> list[np.ndarray] | np.ndarray:
        """Token states per text ((tokens, dim) float32, padding excluded), or with ``pooled``
        their attention-masked means as one (n, dim) array (sentence-transformers' mean pooling)."""
        import torch

        state = self._loaded()
        enc = self.tokenize(texts)
        request = state.get("request")
        out: list = [None] * len(texts)
        for idx in length_batches([len(ids) for ids in enc["input_ids"]], self.batch_size):
            batch = pad_batch([{k: enc[k][i] for k in enc.keys()} for i in idx], state["tokenizer"].pad_token_id or 0,
                              multiple=16 if request is not None else 1)
            if request is not None:
                hidden = request.infer({k: v.numpy() for k, v in batch.items()})[0]
            else:
                net = state["net"]
                device = next(net.parameters()).device
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                    hidden = net(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state.float().cpu().numpy()
            mask = batch["attention_mask"].numpy().astype(bool)
            for row, i in enumerate(idx):
                out[i] = np.asarray(hidden[row][mask[row]], dtype=np.float32)
        if pooled:
            return np.stack([s.mean(axis=0) for s in out]) if out else np.zeros((0, 1), np.float32)
        return out

    def token_ids(self, text: str) -> list[int]:
        return self.tokenize([text])["input_ids"][0]

    def token_store(self, enabled: bool = True):
        """The shared store of this encoder's L2-normalised token states (fp16, one entry per text):
        zero-shot MaxSim reads its documents there, and a dense first stage built with
        ``keep_token_states`` fills it while it encodes the corpus, so one forward pass serves both."""
        from ..core.files import stable_hash
        from .stores import EmbeddingStore

        key = ("tokens", enabled)
        if key not in self._state:
            self._state[key] = EmbeddingStore(f"tokens-{stable_hash(self.identity())}", enabled=enabled)
        return self._state[key]


def normalised(states: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (token states for MaxSim)."""
    return states / np.linalg.norm(states, axis=1, keepdims=True).clip(1e-12)


def text_key(text: str) -> str:
    """The token store's key of a document text."""
    from ..core.files import stable_hash

    return stable_hash(text, length=24)
