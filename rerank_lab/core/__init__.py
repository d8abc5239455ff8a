"""The core: runs, stages, the reranker protocol, composition, interpolation, cost.

It imports nothing else from the package; every other layer builds on it.
"""
from .cost import StageCost
from .data import Dataset, Document, Query, corpus_fingerprint
from .interpolate import Interpolate, interpolate_runs
from .provenance import TrainingData, provenance
from .reranker import FunctionReranker, Reranker, as_reranker
from .run import Run, trec_order
from .stage import Cascade, Cutoff, FirstStage, FixedRun, FunctionScorer, Rerank, Scorer, Stage, as_scorer, as_stage

__all__ = ["Cascade", "Cutoff", "Dataset", "Document", "FirstStage", "FixedRun", "FunctionReranker", "FunctionScorer",
           "Interpolate", "Query", "Rerank", "Reranker", "Run", "Scorer", "Stage", "StageCost", "TrainingData", "as_reranker",
           "as_scorer", "as_stage", "corpus_fingerprint", "interpolate_runs", "provenance", "trec_order"]
