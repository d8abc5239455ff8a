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


__all__ = ["BaseReranker", "FunctionReranker", "Reranker", "REGISTRY", "as_reranker", "load_reranker", "register"]
