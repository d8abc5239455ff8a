"""Reranker families. One file per family; one line per name in ``REGISTRY``.

A name is registered with either of two things, and :func:`register` says which it got:

* a **factory**: a class, or a function whose parameters all have defaults, called (with
  :func:`load_reranker`'s keyword arguments) to build the reranker. The lab's families are
  factories returning their offline default (for a trained family: the model as its tuner chose
  to use it);
* a **reranker**, used as it is: a stage, an object with ``score(query, documents)``, or a
  function ``(query, documents) -> scores``.

Either may be given as ``"module:attribute"``, imported when the name is first used, so a
family's heavy dependencies load only then. Pipeline specs (``"hybrid>>ce"``) and the CLI
resolve names here.

Usage::

    reranker = load_reranker("ce")                      # keyword arguments go to the factory
    register("mine", "my_package.my_module:MyReranker")  # a class: a factory
    register("overlap", "my_module:overlap")             # a function (query, documents): a reranker
    register("tuned", my_stage)                          # a ready stage object
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from ..core.stage import Stage

KINDS = ("auto", "factory", "reranker")


class RegistryError(ValueError):
    """A registered name whose target cannot be imported or used; the message says what to do."""


@dataclass(frozen=True)
class Entry:
    """What a name stands for: ``target`` (an object, or ``"module:attribute"``) and its ``kind``
    (``"factory"``, ``"reranker"`` or ``"auto"``: told apart when first used)."""

    target: object
    kind: str = "auto"


REGISTRY: dict[str, Entry] = {name: Entry(target, "factory") for name, target in {
    "ce": "rerank_lab.rerankers.cross_encoder:lab_cross_encoder",
    "colbert": "rerank_lab.rerankers.colbert:colbert",
    "maxsim": "rerank_lab.rerankers.maxsim:zero_shot",
    "fusion": "rerank_lab.rerankers.fusion:zero_shot_fusion",
    "ce-fusion": "rerank_lab.rerankers.fusion:lab_ce_fusion",
    "listwise": "rerank_lab.rerankers.listwise:listwise",
    "rankgpt": "rerank_lab.rerankers.listwise:rankgpt",
    "first": "rerank_lab.rerankers.first:first",
    "llm-pointwise": "rerank_lab.rerankers.llm_pointwise:llm_pointwise",
    "pairwise": "rerank_lab.rerankers.pairwise:pairwise",
}.items()}


def register(name: str, target: object, kind: str = "auto") -> None:
    """Make ``name`` usable in pipeline specs and the CLI. ``target``: a factory or a reranker (see
    the module docstring), or ``"module:attribute"`` naming one. ``kind``: ``"factory"`` (called to
    build the reranker), ``"reranker"`` (used as it is), or ``"auto"``: a stage, an object with
    ``score`` or a function of two required parameters is a reranker; a class or a callable with no
    required parameter is a factory."""
    if kind not in KINDS:
        raise RegistryError(f"register({name!r}): kind {kind!r} is not one of {', '.join(KINDS)}")
    if isinstance(target, str) and target.count(":") != 1:
        raise RegistryError(f"register({name!r}, {target!r}): write the target as 'module:attribute' "
                            f"(e.g. 'my_package.my_module:overlap'), or pass the object itself")
    REGISTRY[name] = Entry(target, kind)


def load_reranker(name: str, device: str | None = None, **kwargs):
    """The reranker ``name`` stands for: built by its factory (keyword arguments go to the factory),
    or the registered reranker itself. ``device`` reaches a factory that takes one (None: its default)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown reranker {name!r}; known: {', '.join(sorted(REGISTRY)) or 'none'}")
    entry = REGISTRY[name]
    target = _imported(name, entry.target)
    kind = entry.kind if entry.kind != "auto" else _kind_of(name, target)
    if kind == "reranker":
        if kwargs:
            raise RegistryError(f"reranker {name!r} is registered ready-made and takes no settings "
                                f"({', '.join(kwargs)}); register a factory to pass settings")
        _check_reranker(name, target, "is registered as a reranker but")
        return target
    if device is not None and _takes_device(target):
        kwargs = {"device": device, **kwargs}
    try:
        inspect.signature(target).bind(**kwargs)
    except TypeError as exc:
        raise RegistryError(f"cannot build reranker {name!r} with {_describe(entry.target)}({_settings(kwargs)}): "
                            f"{exc}. A factory must build the reranker from keyword settings alone; register a "
                            f"function (query, documents) -> scores with kind='reranker'") from None
    except ValueError:  # no signature to read (a builtin): let the call say
        pass
    built = target(**kwargs)
    _check_reranker(name, built, f"was built by {_describe(entry.target)}, which")
    return built


def _takes_device(factory) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "device" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _imported(name: str, target: object) -> object:
    """``target`` itself, or the object ``"module:attribute"`` names."""
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name + ".").startswith(exc.name + "."):  # the module, not one of its imports
            raise RegistryError(f"reranker {name!r} names {target!r}, but there is no module {module_name!r} "
                                f"on the Python path; check the spelling or install its package") from None
        raise
    except ImportError:  # a dependency of the module (a family's extra not installed): its own message
        raise
    except Exception as exc:  # noqa: BLE001 - a module that fails on import is reported, not re-raised raw
        raise RegistryError(f"reranker {name!r} names {target!r}, but importing {module_name!r} failed "
                            f"({type(exc).__name__}: {exc}); fix that module") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RegistryError(f"reranker {name!r} names {target!r}, but {module_name!r} has no {attr!r}; "
                                f"check the attribute name")
        obj = getattr(obj, part)
    return obj


def _kind_of(name: str, target: object) -> str:
    """``"reranker"`` or ``"factory"`` for a target registered with ``kind="auto"``."""
    if isinstance(target, Stage) or (not inspect.isclass(target) and callable(getattr(target, "score", None))):
        return "reranker"
    if inspect.isclass(target):
        return "factory"
    if not callable(target):
        raise RegistryError(f"reranker {name!r} is {target!r}: neither a reranker nor a factory; register a "
                            f"class, a function, or an object with score(query, documents)")
    try:
        required = [p for p in inspect.signature(target).parameters.values() if p.default is p.empty
                    and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        required = None
    if required is not None and len(required) in (0, 2):
        return "factory" if not required else "reranker"
    raise RegistryError(f"cannot tell whether {name!r} ({_describe(target)}) is a factory or a reranker; register "
                        f"it with kind='factory' (called with no arguments to build the reranker) or "
                        f"kind='reranker' (called as fn(query, documents) -> scores)")


def _check_reranker(name: str, obj: object, context: str) -> None:
    if not (isinstance(obj, Stage) or callable(getattr(obj, "score", None)) or callable(obj)):
        raise RegistryError(f"reranker {name!r} {context} is {type(obj).__name__}, not a reranker (a stage, an "
                            f"object with score(query, documents), or a function (query, documents) -> scores)")


def _describe(target: object) -> str:
    return target if isinstance(target, str) else getattr(target, "__qualname__", None) or repr(target)


def _settings(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


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


__all__ = ["KINDS", "REGISTRY", "Entry", "RegistryError", "load_reranker", "ready", "register"]
