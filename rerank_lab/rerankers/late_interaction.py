"""Late interaction: MaxSim over cached per-document token embeddings, shared by the ColBERT
and zero-shot MaxSim families.

Khattab & Zaharia, "ColBERT: Efficient and Effective Passage Search via Contextualized Late
Interaction over BERT" (SIGIR 2020): a query and a document are encoded separately into one
vector per token; the score is the sum over query tokens of the best cosine with any
document token. Documents therefore encode once: their token embeddings go to the shared
embedding store (fp16, keyed by encoder identity and text), and a reranking call costs one
query encoding plus a small matrix product.

Usage::

    reranker.score(query, documents)              # any LateInteraction family
    reranker.explain(query, document).top(5)      # which query token matched what
    Projected(reranker, pca_projection(embs, 64)) # the same cached encodings, 64 dimensions
"""
from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..components.stores import EmbeddingStore
from ..core.files import stable_hash
from ..core.stage import Scorer


def maxsim(Q: torch.Tensor, D: torch.Tensor, D_mask: torch.Tensor) -> torch.Tensor:
    """MaxSim scores of one query against padded documents.

    ``Q``: (Lq, dim) query token embeddings; ``D``: (N, Ld, dim) document token embeddings,
    padded; ``D_mask``: (N, Ld) bool, True for real tokens. Returns (N,) float32:
    ``sum_i max_{j: mask} <Q_i, D_j>``. Padded positions are -inf before the max, so they
    never contribute; a document with no token at all scores 0.
    """
    Q, D = Q.float(), D.float()
    sim = torch.einsum("nld,qd->nlq", D, Q)
    sim = sim.masked_fill(~D_mask.bool().unsqueeze(-1), float("-inf"))
    best = sim.max(dim=1).values                                    # (N, Lq)
    best = torch.where(torch.isfinite(best), best, torch.zeros_like(best))
    return best.sum(-1)


def pad_documents(docs: Sequence[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length (Ld, dim) arrays into (N, max Ld, dim) float32 plus a bool mask."""
    dim = int(docs[0].shape[-1]) if docs else 1
    longest = max((int(d.shape[0]) for d in docs), default=0)
    D = torch.zeros(len(docs), max(longest, 1), dim, dtype=torch.float32)
    mask = torch.zeros(len(docs), max(longest, 1), dtype=torch.bool)
    for i, d in enumerate(docs):
        n = int(d.shape[0])
        D[i, :n] = d.float() if torch.is_tensor(d) else torch.from_numpy(np.asarray(d, dtype=np.float32))
        mask[i, :n] = True
    return D, mask


@dataclass
class Explanation:
    """Why a document got its MaxSim score: similarities of every query token with every
    document token, each query token's best match and its contribution to the score."""

    query_tokens: list[str]
    doc_tokens: list[str]
    similarity: np.ndarray      # (len(query_tokens), len(doc_tokens)) cosine
    best: np.ndarray            # (len(query_tokens),) index of the best document token
    contributions: np.ndarray   # (len(query_tokens),) = similarity[i, best[i]]
    score: float                # = contributions.sum()

    def top(self, n: int = 5) -> list[tuple[str, str, float]]:
        """The ``n`` query tokens contributing most: (query token, matched doc token, value)."""
        order = np.argsort(-self.contributions)[:n]
        return [(self.query_tokens[i], self.doc_tokens[self.best[i]], float(self.contributions[i])) for i in order]


class LateInteraction(Scorer):
    """MaxSim reranking over stored document token embeddings. Families (frozen dataclasses
    with ``batch_size``, ``cache`` and ``name`` fields) implement the encoders.

    Counters: ``query_encodings``, ``docs_encoded``, ``cache_hits``, ``cache_misses``,
    ``saved_seconds``, ``cache_seconds``.
    """

    @abstractmethod
    def identity(self) -> dict:
        """Everything that changes document embeddings (model identity, lengths, precision)."""

    @abstractmethod
    def encode_query(self, query: str) -> torch.Tensor:
        """(Lq, dim) normalised query token embeddings, every row counts."""

    @abstractmethod
    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        """One (Ld, dim) array per text: only the tokens that take part in MaxSim."""

    @abstractmethod
    def tokens(self, query: str, document: str) -> tuple[list[str], list[str], torch.Tensor, np.ndarray]:
        """Query tokens, document tokens and their embeddings, aligned row by row."""

    @property
    def store(self) -> EmbeddingStore:
        if "store" not in self._state:
            self._state["store"] = EmbeddingStore(f"{self.identity()['family']}-{stable_hash(self.identity())}",
                                                  enabled=self.cache)  # type: ignore[attr-defined]
        return self._state["store"]

    def document_embeddings(self, documents: Sequence[str]) -> list[np.ndarray]:
        """Token embeddings of each document: from the store, encoding only the misses (each
        distinct text once). Returned as stored (fp16), so cold and warm scores agree exactly."""
        t0 = time.perf_counter()
        keys = [stable_hash(text, length=24) for text in documents]
        found: dict[str, np.ndarray] = {}
        todo: dict[str, str] = {}
        saved = 0.0
        for key, text in zip(keys, documents):
            if key in found or key in todo:
                continue
            hit = self.store.get(key)
            if hit is None:
                todo[key] = text
            else:
                found[key], seconds = hit
                saved += seconds
        lookup = time.perf_counter() - t0
        self.count("cache_hits", len(found))
        self.count("cache_misses", len(todo))
        self.count("saved_seconds", saved)
        if todo:
            loaded_before = self.counters.get("load_seconds", 0.0)
            t1 = time.perf_counter()
            encoded = self.encode_documents(list(todo.values()))
            spent = time.perf_counter() - t1 - (self.counters.get("load_seconds", 0.0) - loaded_before)
            per_doc = max(spent, 0.0) / len(encoded)
            self.count("docs_encoded", len(encoded))
            t2 = time.perf_counter()
            for key, emb in zip(todo, encoded):
                found[key] = self.store.put(key, emb, per_doc)
            lookup += time.perf_counter() - t2
        self.count("cache_seconds", lookup)
        return [found[k] for k in keys]

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        Q = self.encode_query(query)
        self.count("query_encodings")
        D, mask = pad_documents(self.document_embeddings(documents))
        return maxsim(Q, D, mask).tolist()

    def explain(self, query: str, document: str) -> Explanation:
        """Token-level account of ``score(query, [document])`` (same encoders, no cache)."""
        q_tokens, d_tokens, Q, D = self.tokens(query, document)
        D = torch.from_numpy(np.asarray(D, dtype=np.float16).astype(np.float32))  # as stored
        return _explanation(q_tokens, d_tokens, Q.float(), D)

    def flush(self) -> None:
        if "store" in self._state:
            self.store.flush()


def _explanation(q_tokens, d_tokens, Q: torch.Tensor, D: torch.Tensor) -> Explanation:
    sim = (Q @ D.T).numpy()
    best = sim.argmax(axis=1)
    contributions = sim[np.arange(len(q_tokens)), best]
    return Explanation(q_tokens, d_tokens, sim, best, contributions, float(contributions.sum()))


@dataclass(frozen=True, eq=False)
class Projected(Scorer):
    """A late-interaction reranker whose query and document tokens are projected by
    ``matrix`` (dim, k) and re-normalised at scoring time: a dimension ablation over the same
    cached encodings, no re-encoding. Equal only to itself (the matrix is data)."""

    base: LateInteraction
    matrix: np.ndarray
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or f"{self.base.name}-{self.matrix.shape[1]}d"

    def inner(self):
        return (self.base,)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x.float() @ torch.as_tensor(self.matrix, dtype=torch.float32), dim=-1)

    def score(self, query, documents):
        if not documents:
            return []
        Q = self._project(self.base.encode_query(query))
        D, mask = pad_documents(self.base.document_embeddings(documents))
        return maxsim(Q, self._project(D), mask).tolist()

    def explain(self, query: str, document: str) -> Explanation:
        q_tokens, d_tokens, Q, D = self.base.tokens(query, document)
        D = torch.from_numpy(np.asarray(D, dtype=np.float16).astype(np.float32))
        return _explanation(q_tokens, d_tokens, self._project(Q), self._project(D))


def pca_projection(embeddings: Sequence[np.ndarray], k: int) -> np.ndarray:
    """(dim, k) matrix of the top-``k`` uncentred principal directions of token embeddings."""
    X = torch.as_tensor(np.concatenate([np.asarray(e, dtype=np.float32) for e in embeddings]))
    _, _, vt = torch.linalg.svd(X, full_matrices=False)
    return vt[:k].T.contiguous().numpy()


def storage_bytes(embeddings: Sequence[np.ndarray], dim: int | None = None, bytes_per_value: int = 2) -> float:
    """Mean bytes per document to store its token embeddings (fp16 by default)."""
    if not embeddings:
        return 0.0
    width = dim or int(embeddings[0].shape[1])
    return float(np.mean([e.shape[0] for e in embeddings]) * width * bytes_per_value)
