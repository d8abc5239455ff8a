"""Reranker families. One file per family; one line per name in ``REGISTRY``.

Entries are ``"module:factory"`` strings so that a family's heavy dependencies load only
when it is used. A factory takes no required arguments and returns the family's offline
default; pipeline specs (``"hybrid>>ce"``) and the CLI resolve names here.

Usage::

    reranker = load_reranker("ce")
    register("mine", "my_package.my_module:MyReranker")
"""
from __future__ import annotations

import importlib

from .base import BaseReranker, FunctionReranker, Reranker, as_reranker

REGISTRY: dict[str, str] = {
    "listwise": "rerank_lab.rerankers.listwise:listwise",
    "rankgpt": "rerank_lab.rerankers.listwise:rankgpt",
    "first": "rerank_lab.rerankers.listwise:first",
    "llm-pointwise": "rerank_lab.rerankers.llm_pointwise:llm_pointwise",
    "colbert": "rerank_lab.rerankers.colbert:colbert",
    "maxsim": "rerank_lab.rerankers.colbert:zero_shot",
    "ce": "rerank_lab.rerankers.cross_encoder:lab_cross_encoder",
}


def register(name: str, target: str) -> None:
    """Make ``name`` usable in pipeline specs; ``target`` is ``"module:callable"``."""
    REGISTRY[name] = target


def load_reranker(name: str, **kwargs) -> Reranker:
    if name not in REGISTRY:
        raise KeyError(f"unknown reranker {name!r}; known: {', '.join(sorted(REGISTRY)) or 'none'}")
    module, _, attr = REGISTRY[name].partition(":")
    factory = importlib.import_module(module)
    for part in attr.split("."):
        factory = getattr(factory, part)
    return factory(**kwargs)


def ready(name: str) -> bool:
    """Whether ``name`` loads here, e.g. its lab-trained weights exist (offline defaults
    that need a training command first raise FileNotFoundError/OSError until it ran)."""
    if name not in REGISTRY:
        return False
    try:
        load_reranker(name)
    except (OSError, ImportError):
        return False
    return True


__all__ = ["ready", "BaseReranker", "FunctionReranker", "Reranker", "REGISTRY", "as_reranker", "load_reranker", "register"]
