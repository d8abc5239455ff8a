"""Progress over a whole job, not one stage at a time.

A job (``rerank-lab lift``, an ``Experiment``) says how many items it will score; every
:class:`~rerank_lab.core.stage.Rerank` reports the items it finished to the job in force,
so one bar with an ETA spans all pipelines. Per-stage bars still show inside notebooks.

Every bar in the package comes from :func:`progress_bar`, so one setting decides how they show:
``RERANK_LAB_PROGRESS=auto`` (the default: widgets in Jupyter, text in a terminal), ``text`` (plain
text even in Jupyter: what a saved notebook can show) or ``none``.

Usage::

    with job_progress(total=6000, desc="lift scifact") :
        with job_stage("ce"):      # the bar reads "ce: lift scifact" meanwhile
            pipeline(dataset)      # Rerank stages advance the bar
    for item in progress_bar(items, desc="scoring"): ...
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

MODES = ("auto", "text", "none")


def progress_mode() -> str:
    mode = os.environ.get("RERANK_LAB_PROGRESS", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"RERANK_LAB_PROGRESS={mode!r}: use one of {', '.join(MODES)}")
    return mode


def progress_bar(iterable=None, **kwargs):
    """A tqdm bar (with ETA) as :envvar:`RERANK_LAB_PROGRESS` asks: widget, text or none."""
    mode = progress_mode()
    if mode == "auto":
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    if mode == "none":
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)

_JOB: ContextVar["object | None"] = ContextVar("rerank_lab_job", default=None)


@contextmanager
def job_progress(total: int, desc: str = "job", disable: bool = False) -> Iterator[object]:
    bar = progress_bar(total=max(int(total), 0), desc=desc, unit="item", disable=disable or total <= 0, leave=True)
    token = _JOB.set(bar)
    try:
        yield bar
    finally:
        _JOB.reset(token)
        bar.close()


@contextmanager
def job_stage(name: str) -> Iterator[None]:
    """While the step ``name`` runs inside a job, the job's bar names it first
    (``ce: scifact: 3 pipelines``), so one bar still says where the work is."""
    bar = _JOB.get()
    if bar is None or getattr(bar, "disable", False):
        yield
        return
    base = bar.desc  # type: ignore[attr-defined]
    bar.set_description_str(f"{name}: {base}")  # type: ignore[attr-defined]
    try:
        yield
    finally:
        bar.set_description_str(base, refresh=False)  # type: ignore[attr-defined]


def in_job() -> bool:
    return _JOB.get() is not None


def advance(items: int) -> None:
    bar = _JOB.get()
    if bar is not None and items:
        bar.update(items)  # type: ignore[attr-defined]
