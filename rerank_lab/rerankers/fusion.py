"""Zero-shot score fusion as a reranker: BM25's and the dense model's own scores mixed into the
hybrid's candidates with weights tuned on train/dev queries. No model learns anything, so no
document can be memorised; the only judgments read are the tuning queries' (``provenance.json``).

Reciprocal rank fusion throws the scores away; a tuned convex combination of normalised scores
keeps them (Bruch, Gai & Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", TOIS
2023). :class:`~rerank_lab.core.interpolate.Fuse` does the mixing; this file holds the factory.

``"ce-fusion"`` adds the lab cross-encoder's score to those three, the four weights chosen on the
cross-encoder's *clean* validation queries (SciFact train queries it never trained on, none of
whose relevant documents were its training positives), so the choice cannot reward memory.

Usage::

    run = (hybrid() % 100 >> load_reranker("fusion"))(dataset)
    run = (hybrid() % 100 >> load_reranker("ce-fusion"))(dataset)
    python -m rerank_lab.train.tune fusion          # re-tune the weights (train/dev splits only)
    python -m rerank_lab.train.tune ce-fusion       # the cross-encoder's fusion weights (clean validation)
"""
from __future__ import annotations

from ..components.lab_weights import LAB_CE_DIR, LAB_CE_FUSION_DIR, LAB_FUSION_DIR, read_tuning
from ..components.provenance import read_provenance
from ..core.interpolate import Fuse
from ..first_stage import BM25, Dense

#: weights before any tuning: the hybrid's own score, then BM25's and the dense model's
UNTUNED = (1.0, 0.5, 0.5)
#: the same, then the lab cross-encoder's
UNTUNED_CE = (1.0, 0.5, 0.5, 0.5)


def fusion_inputs(device: str = "auto") -> tuple:
    return (BM25(), Dense(device=device))


def zero_shot_fusion(weights: tuple[float, ...] | None = None, rerank_depth: int | None = None,
                     name: str = "fusion", device: str = "auto") -> Fuse:
    """Registry factory ``"fusion"``: the tuned weights and depth of ``weights/fusion/tuning.json``
    (arguments override them)."""
    tuning = read_tuning(LAB_FUSION_DIR)
    chosen = tuple(tuning.scorer_settings.get("weights", UNTUNED)) if weights is None else tuple(weights)
    depth = (tuning.rerank_depth or 20) if rerank_depth is None else rerank_depth
    return Fuse(fusion_inputs(device), chosen, rerank_depth=depth, label=name,
                trained_on=read_provenance(LAB_FUSION_DIR) if weights is None else ())


def lab_ce_fusion(weights: tuple[float, ...] | None = None, rerank_depth: int | None = None,
                  name: str = "ce-fusion", device: str = "auto") -> Fuse:
    """Registry factory ``"ce-fusion"``: hybrid's, BM25's, the dense model's and the lab
    cross-encoder's scores fused with the weights of ``weights/ce-fusion/tuning.json`` (arguments
    override them). Its provenance is the cross-encoder's plus the validation the weights read."""
    from .cross_encoder import lab_cross_encoder

    tuning = read_tuning(LAB_CE_FUSION_DIR)
    chosen = tuple(tuning.scorer_settings.get("weights", UNTUNED_CE)) if weights is None else tuple(weights)
    depth = (tuning.rerank_depth or 20) if rerank_depth is None else rerank_depth
    scorer = lab_cross_encoder(LAB_CE_DIR, alpha=1.0, rerank_depth=None, device=device)
    return Fuse((*fusion_inputs(device), scorer), chosen, rerank_depth=depth, label=name,
                trained_on=read_provenance(LAB_CE_FUSION_DIR) if weights is None else ())


__all__ = ["UNTUNED", "UNTUNED_CE", "fusion_inputs", "lab_ce_fusion", "zero_shot_fusion"]
