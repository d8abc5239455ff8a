"""What a published number ran on: the machine, the package versions, every stage's settings.

Usage::

    machine()["cpu"]            # "Intel(R) Xeon(R) Processor", flags, cores; machine()["gpu"]: the GPUs or "none"
    versions()                  # {"python": ..., "torch": ..., ...}
    describe(parse_pipeline("hybrid>>ce"))
"""
from __future__ import annotations

import platform
import re
from importlib import metadata
from pathlib import Path

from ..core.stage import Cascade, Cutoff, Rerank, Stage


def safe_name(name: str) -> str:
    """A pipeline name as a file name: ``hybrid>>ce`` -> ``hybrid__ce``."""
    return re.sub(r"[^A-Za-z0-9_.%-]+", "_", name.replace(">>", "__")).strip("_")


def machine() -> dict[str, str]:
    """The CPU (and GPU) a measurement ran on, for every timing we publish."""
    info = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
        info["cpu_flags"] = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx_vnni")
                                     if f" {f}" in flags) or "none of avx2/avx512/amx"
    except OSError:
        pass
    import os

    info["cores"] = str(os.cpu_count())
    info["gpu"] = gpus()
    return info


def gpus() -> str:
    """The CUDA GPUs torch sees (``"NVIDIA H100 80GB HBM3"``, several joined by ``; ``), or ``"none"``."""
    try:
        import torch

        if torch.cuda.is_available():
            return "; ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - a broken driver is "no GPU" for a manifest
        pass
    return "none"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("rerank-lab", "torch", "transformers", "sentence-transformers", "bm25s", "colbert-ai",
                    "openvino", "llama-cpp-python", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def describe(stage: Stage) -> list[dict]:
    """Parameters of each stage: its class, plain settings and model identity."""
    from dataclasses import fields, is_dataclass

    out = []
    for s in stage.stages:
        depth = None
        if isinstance(s, Cutoff):
            s, depth = s.stage, s.k
        target = s.reranker if isinstance(s, Rerank) else s
        params = {f.name: getattr(target, f.name) for f in fields(target)} if is_dataclass(target) else {}
        params = {k: v for k, v in params.items() if isinstance(v, (str, int, float, bool, type(None)))}
        entry = {"name": s.name, "class": f"{type(target).__module__}.{type(target).__qualname__}", "depth": depth,
                 "params": params}
        identity = getattr(target, "identity", None)
        if callable(identity):
            try:
                entry["identity"] = identity()
            except Exception:  # noqa: BLE001 - identity is best effort (a hub id that is not downloaded)
                pass
        inner = [getattr(target, a) for a in ("inputs",) if hasattr(target, a)]
        if inner:
            entry["inputs"] = [d for stages in inner for x in stages for d in describe(x)]
        if isinstance(target, Cascade):
            entry["stages"] = describe(target)
        out.append(entry)
    return out

