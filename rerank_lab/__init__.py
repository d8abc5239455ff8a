"""rerank_lab: a lab bench for reranker architectures.

Usage::

    from rerank_lab import load_dataset, BM25, hybrid, evaluate, parse_pipeline
    ds = load_dataset("scifact")
    run = (hybrid() % 100 >> my_reranker)(ds)
    evaluate(run, ds.qrels)["ndcg@10"]
"""
from .data import DataError, DataWarning, Dataset, Document, Query, load_dataset
from .evaluate import Results, evaluate, paired_test
from .experiment import Experiment
from .first_stage import BM25, RRF, Dense, hybrid
from .pipeline import Cascade, Cutoff, FirstStage, Interpolate, Rerank, Stage
from .rerankers import BaseReranker, Reranker, load_reranker, register
from .run import Run, StageCost
from .specs import parse_pipeline

__version__ = "0.1.0"

__all__ = [
    "BM25", "BaseReranker", "Cascade", "Cutoff", "DataError", "DataWarning", "Dataset", "Dense", "Document", "Experiment",
    "FirstStage", "Interpolate", "Query", "RRF", "Rerank", "Reranker", "Results", "Run", "Stage", "StageCost",
    "evaluate", "hybrid", "load_dataset", "load_reranker", "paired_test", "parse_pipeline", "register",
]
