"""Progress over a whole job, not one stage at a time.

A job (``rerank-lab lift``, an ``Experiment``) says how many items it will score; every
:class:`~rerank_lab.core.stage.Rerank` reports the items it finished to the job in force,
so one bar with an ETA spans all pipelines. Per-stage bars still show inside notebooks.

Usage::

    with job_progress(total=6000, desc="lift scifact") :
        pipeline(dataset)          # Rerank stages advance the bar
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_JOB: ContextVar["object | None"] = ContextVar("rerank_lab_job", default=None)


@contextmanager
def job_progress(total: int, desc: str = "job", disable: bool = False) -> Iterator[object]:
    from tqdm.auto import tqdm

    bar = tqdm(total=max(int(total), 0), desc=desc, unit="item", disable=disable or total <= 0, leave=True)
    token = _JOB.set(bar)
    try:
        yield bar
    finally:
        _JOB.reset(token)
        bar.close()


def in_job() -> bool:
    return _JOB.get() is not None


def advance(items: int) -> None:
    bar = _JOB.get()
    if bar is not None and items:
        bar.update(items)  # type: ignore[attr-defined]
