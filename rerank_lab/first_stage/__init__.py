"""First stages: retrieve candidates from the whole corpus."""
from .bm25 import BM25
from .dense import Dense
from .fusion import RRF, hybrid

__all__ = ["BM25", "Dense", "RRF", "hybrid"]
