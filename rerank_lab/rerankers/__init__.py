"""Reranker families. One file per family; one line per name in ``REGISTRY``.

Entries are ``"module:factory"`` strings, so a family's heavy dependencies load only when it
is used. A factory takes no required arguments and returns the family's offline default
(for a trained family: the model as its tuner chose to use it); pipeline specs
(``"hybrid>>ce"``) and the CLI resolve names here.

Usage::

    reranker = load_reranker("ce")                      # keyword arguments override the defaults
    register("mine", "my_package.my_module:MyReranker")
"""
from __future__ import annotations

import importlib

REGISTRY: dict[str, str] = {
    "ce": "rerank_lab.rerankers.cross_encoder:lab_cross_encoder",
    "colbert": "rerank_lab.rerankers.colbert:colbert",
    "maxsim": "rerank_lab.rerankers.maxsim:zero_shot",
    "fusion": "rerank_lab.rerankers.fusion:zero_shot_fusion",
    "listwise": "rerank_lab.rerankers.listwise:listwise",
    "rankgpt": "rerank_lab.rerankers.listwise:rankgpt",
    "first": "rerank_lab.rerankers.first:first",
    "llm-pointwise": "rerank_lab.rerankers.llm_pointwise:llm_pointwise",
    "pairwise": "rerank_lab.rerankers.pairwise:pairwise",
}


def register(name: str, target: str) -> None:
    """Make ``name`` usable in pipeline specs; ``target`` is ``"module:callable"``."""
    REGISTRY[name] = target


def reranker_factory(name: str):
    """The callable the registry names (its module imported now)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown reranker {name!r}; known: {', '.join(sorted(REGISTRY)) or 'none'}")
    module, _, attr = REGISTRY[name].partition(":")
    factory = importlib.import_module(module)
    for part in attr.split("."):
        factory = getattr(factory, part)
    return factory


def load_reranker(name: str, **kwargs):
    """The stage the registry names, built by its factory (keyword arguments go to the factory)."""
    return reranker_factory(name)(**kwargs)


def ready(name: str) -> bool:
    """Whether ``name`` loads here (offline defaults that need a training command first raise
    FileNotFoundError/OSError until it ran)."""
    if name not in REGISTRY:
        return False
    try:
        load_reranker(name)
    except (OSError, ImportError):
        return False
    return True


__all__ = ["REGISTRY", "load_reranker", "ready", "register", "reranker_factory"]
