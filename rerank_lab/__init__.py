"""rerank_lab: a lab bench for reranker architectures.

Usage::

    from rerank_lab import load_dataset, hybrid, evaluate, load_reranker
    ds = load_dataset("scifact")
    run = (hybrid() % 100 >> load_reranker("ce"))(ds)
    evaluate(run, ds.qrels)["ndcg@10"]

The tree shows the layers, each importing only from those above it: ``core`` (runs, stages,
the reranker protocol, composition, interpolation, cost, provenance) -> ``components`` (stores,
wrappers, batching, model loading, runtime backends, provenance on disk; with ``data``) ->
``first_stage``, ``rerankers``, ``llm``, ``specs`` (families) -> ``analysis`` (evaluation,
contamination, experiments, plots) -> ``train`` (recipes, the tuner, zELO; judged by analysis) ->
``cli``, ``integrations``, ``distributed``, ``notebook`` (edges). ``tests/test_architecture.py``
holds the package to this order.
"""
from .analysis.evaluate import Results, evaluate, paired_test
from .analysis.experiment import Experiment
from .core import (Cascade, Cutoff, Dataset, Document, FirstStage, FixedRun, Interpolate, Query, Rerank, Reranker,
                   Run, Scorer, Stage, StageCost, as_scorer)
from .data import DataError, DataWarning, load_dataset
from .first_stage import BM25, RRF, Dense, hybrid
from .rerankers import load_reranker, register
from .specs import parse_pipeline

__version__ = "0.2.0"

__all__ = [
    "BM25", "Cascade", "Cutoff", "DataError", "DataWarning", "Dataset", "Dense", "Document", "Experiment", "FirstStage",
    "FixedRun", "Interpolate", "Query", "RRF", "Rerank", "Reranker", "Results", "Run", "Scorer", "Stage", "StageCost",
    "as_scorer", "evaluate", "hybrid", "load_dataset", "load_reranker", "paired_test", "parse_pipeline", "register",
]
