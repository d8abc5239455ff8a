"""The LLM reranker families side by side with shared settings: the comparison notebook 04 draws
and ``scripts/llm_study.py`` runs at scale (same model, candidates and passage cut for every family,
so any difference is the method's).

Usage::

    methods = llm_methods(StudySettings(window=20, stride=10, words=50))
    pipelines = {"hybrid": first, **{n: first >> m for n, m in methods.items()}}
"""
from __future__ import annotations

from dataclasses import dataclass

from ..llm.packaged import DEFAULT_GGUF


@dataclass(frozen=True)
class StudySettings:
    """What the families share: the model, the listwise window and stride, the passage cut, and
    PRP-Sliding's passes (each pass is n − 1 comparisons, both orders)."""

    model: str = DEFAULT_GGUF
    window: int = 20
    stride: int = 10
    words: int = 50
    pair_passes: int = 1


def llm_methods(settings: StudySettings = StudySettings()) -> dict:
    """``{name: scorer}``: listwise (RankGPT), FIRST raw and calibrated, pointwise yes/no, pairwise (PRP)."""
    from ..rerankers.first import First
    from ..rerankers.listwise import Listwise
    from ..rerankers.llm_pointwise import PointwiseLLM
    from ..rerankers.pairwise import Pairwise

    common = dict(model=settings.model, max_passage_words=settings.words)
    windows = dict(window=settings.window, stride=settings.stride)
    return {"listwise": Listwise(**common, **windows),
            "first (raw)": First(**common, **windows, calibrate=False),
            "first": First(**common, **windows),
            "llm-pointwise": PointwiseLLM(**common),
            "pairwise": Pairwise(**common, method="sliding", passes=settings.pair_passes)}
