"""Late interaction: ColBERT MaxSim reranking through colbert-ai, plus a zero-shot MaxSim.

Khattab & Zaharia, "ColBERT: Efficient and Effective Passage Search via Contextualized Late
Interaction over BERT" (SIGIR 2020): a query and a document are encoded separately into one
vector per token; the score is the sum over query tokens of the best cosine with any
document token (MaxSim). Documents therefore encode once: their token embeddings are cached
on disk per (checkpoint identity, encoder settings, text hash) as fp16 shards, and a
reranking call costs one query encoding plus a small matrix product.

Two families share that machinery:

* :class:`ColBERTReranker` encodes with colbert-ai's ``Checkpoint`` (``queryFromText`` /
  ``docFromText``: [Q]/[D] markers, [MASK] query augmentation, punctuation skiplist), from a
  checkpoint id (``colbert-ir/colbertv2.0``) or a local folder; CPU, no index, no C++ build.
  The registry name ``"colbert"`` loads the lab-trained checkpoint
  (``python -m rerank_lab.train.colbert`` builds it).
* :class:`ZeroShotMaxSim` scores MaxSim over the raw token embeddings of a sentence encoder
  (all-MiniLM-L6-v2 offline): no projection, no training. Registry name ``"maxsim"``.

Usage::

    ce = load_reranker("colbert")                  # or ColBERTReranker("colbert-ir/colbertv2.0")
    run = (hybrid() % 100 >> ce)(dataset)
    ce.counters                                    # cache_hits, cache_misses, docs_encoded, ...
    exp = ce.explain("what causes scurvy?", doc_text); plot_explanation(exp)
"""
from __future__ import annotations

import atexit
import json
import os
import time
import weakref
from abc import abstractmethod
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..cache import atomic_path, atomic_save_npy, cache_dir, stable_hash
from ..models import MINILM, model_identity, resolve_model
from .base import BaseReranker

#: Where ``python -m rerank_lab.train.colbert`` writes the lab-trained checkpoint.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights" / "colbert-minilm"
TRAIN_COMMAND = "python -m rerank_lab.train.colbert"
#: first-stage interpolation of the registry's "colbert" when no tuned alpha is stored
DEFAULT_ALPHA = 0.5


# -- MaxSim ---------------------------------------------------------------------------
def maxsim(Q: torch.Tensor, D: torch.Tensor, D_mask: torch.Tensor) -> torch.Tensor:
    """MaxSim scores of one query against padded documents.

    ``Q``: (Lq, dim) query token embeddings; ``D``: (N, Ld, dim) document token embeddings,
    padded; ``D_mask``: (N, Ld) bool, True for real tokens. Returns (N,) float32:
    ``sum_i max_{j: mask} <Q_i, D_j>``. Padded positions are set to -inf before the max, so
    they never contribute (colbert-ai's ``colbert_score`` uses -9999 for the same purpose);
    a document with no token at all scores 0.
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
        D[i, :n] = torch.as_tensor(np.asarray(d, dtype=np.float32) if not torch.is_tensor(d) else d.float())
        mask[i, :n] = True
    return D, mask


# -- on-disk token-embedding cache ----------------------------------------------------------
class TokenCache:
    """Per-document token embeddings (fp16) in atomic shards under ``cache_dir("colbert")/key``.

    A shard is ``<name>.npy`` (all its documents' rows concatenated) plus ``<name>.json``
    (text hash -> offset, length), written after the array, so a shard without its index is
    invisible. Shards are memory-mapped on load. New entries are flushed every
    ``flush_every`` documents and at exit: an interrupt loses at most that many encodings.
    """

    def __init__(self, key: str, enabled: bool = True, flush_every: int = 512):
        self.key, self.enabled, self.flush_every = key, enabled, flush_every
        self.folder = cache_dir("colbert") / key if enabled else None
        self._index: dict[str, tuple[str, int, int]] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._pending: dict[str, np.ndarray] = {}
        if enabled:
            self.refresh()
            ref = weakref.ref(self)
            atexit.register(lambda: ref() is not None and ref().flush())  # type: ignore[union-attr]

    def refresh(self) -> None:
        """Pick up shards written since (e.g. by another process)."""
        if self.folder is None:
            return
        for index_file in sorted(self.folder.glob("*.json")):
            name = index_file.stem
            if name in self._arrays:
                continue
            entries = json.loads(index_file.read_text())
            self._arrays[name] = np.load(self.folder / f"{name}.npy", mmap_mode="r")
            for h, (offset, length) in entries.items():
                self._index[h] = (name, offset, length)

    def __len__(self) -> int:
        return len(self._index) + len(self._pending)

    def get(self, text_hash: str) -> np.ndarray | None:
        if text_hash in self._pending:
            return self._pending[text_hash]
        entry = self._index.get(text_hash)
        if entry is None:
            return None
        name, offset, length = entry
        return self._arrays[name][offset:offset + length]

    def put(self, text_hash: str, embeddings: np.ndarray) -> None:
        self._pending[text_hash] = np.ascontiguousarray(embeddings, dtype=np.float16)
        if self.enabled and len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self.enabled or not self._pending or self.folder is None:
            return
        name = f"{time.time_ns():x}-{os.getpid()}"
        hashes = list(self._pending)
        arrays = [self._pending[h] for h in hashes]
        entries, offset = {}, 0
        for h, a in zip(hashes, arrays):
            entries[h] = (offset, int(a.shape[0]))
            offset += int(a.shape[0])
        atomic_save_npy(self.folder / f"{name}.npy", np.concatenate(arrays))
        with atomic_path(self.folder / f"{name}.json") as tmp:
            tmp.write_text(json.dumps(entries))
        self._arrays[name] = np.load(self.folder / f"{name}.npy", mmap_mode="r")
        for h, (off, length) in entries.items():
            self._index[h] = (name, off, length)
        self._pending.clear()

    def nbytes(self) -> int:
        """Bytes of token embeddings held (on disk and pending)."""
        rows = sum(length for _, _, length in self._index.values()) + sum(a.shape[0] for a in self._pending.values())
        dim = next((a.shape[1] for a in [*self._arrays.values(), *self._pending.values()] if a.ndim == 2), 0)
        return int(rows * dim * 2)


# -- explanations -------------------------------------------------------------------------
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


def plot_explanation(explanation: Explanation, ax=None, max_doc_tokens: int | None = 80, title: str | None = None):
    """Heatmap of query × document token cosine, each query token's MaxSim match boxed,
    and each query token's contribution written on the right. Returns the Axes."""
    import matplotlib.pyplot as plt

    e = explanation
    sim, doc_tokens, best = e.similarity, e.doc_tokens, e.best
    if max_doc_tokens is not None and len(doc_tokens) > max_doc_tokens:
        # keep the matched tokens visible: show the first columns that include every best match
        cut = max(max_doc_tokens, int(best.max()) + 1)
        sim, doc_tokens = sim[:, :cut], doc_tokens[:cut]
    if ax is None:
        _, ax = plt.subplots(figsize=(min(0.22 * len(doc_tokens) + 3, 24), 0.3 * len(e.query_tokens) + 1.5))
    image = ax.imshow(sim, aspect="auto", cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1.0)
    ax.set_yticks(range(len(e.query_tokens)), [f"{t}  {c:+.2f}" for t, c in zip(e.query_tokens, e.contributions)],
                  fontsize=7)
    ax.set_xticks(range(len(doc_tokens)), doc_tokens, rotation=90, fontsize=6)
    for i, j in enumerate(best):
        if j < sim.shape[1]:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.2))
    ax.set_xlabel("document tokens (red box: each query token's MaxSim match)")
    ax.set_ylabel("query tokens  (contribution)")
    ax.set_title(title or f"MaxSim score {e.score:.3f}")
    ax.figure.colorbar(image, ax=ax, fraction=0.02, pad=0.01, label="cosine")
    return ax


# -- the shared reranker ----------------------------------------------------------------------
class LateInteractionReranker(BaseReranker):
    """MaxSim reranking over cached per-document token embeddings. Subclasses encode.

    Counters: ``query_encodings``, ``docs_encoded``, ``cache_hits``, ``cache_misses``.
    """

    name = "late-interaction"

    def __init__(self, batch_size: int = 32, bf16: bool = True, cache: bool = True):
        super().__init__()
        self.batch_size, self.bf16, self.use_cache = batch_size, bf16, cache
        self._cache: TokenCache | None = None
        #: optional (dim, k) matrix applied to query and document tokens at scoring time (then
        #: re-normalised): a cheap embedding-dimension ablation over the same cached encodings.
        self.projection: np.ndarray | None = None

    # subclasses --------------------------------------------------------------------
    @abstractmethod
    def settings(self) -> dict:
        """Everything that changes document embeddings (model identity, lengths, dtype)."""

    @abstractmethod
    def encode_query(self, query: str) -> torch.Tensor:
        """(Lq, dim) normalised query token embeddings, every row counts."""

    @abstractmethod
    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        """One (Ld, dim) array per text: only the tokens that take part in MaxSim."""

    @abstractmethod
    def tokens(self, query: str, document: str) -> tuple[list[str], list[str], torch.Tensor, torch.Tensor]:
        """Query tokens, document tokens and their embeddings, aligned row by row."""

    # shared ------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext()

    @property
    def cache(self) -> TokenCache:
        if self._cache is None:
            self._cache = TokenCache(stable_hash(self.settings()), enabled=self.use_cache)
        return self._cache

    def document_embeddings(self, documents: Sequence[str]) -> list[np.ndarray]:
        """Token embeddings of each document: from the cache, encoding only the misses
        (each distinct text once)."""
        hashes = [stable_hash(text, length=24) for text in documents]
        found: dict[str, np.ndarray] = {}
        todo: dict[str, str] = {}
        for h, text in zip(hashes, documents):
            if h in found or h in todo:
                continue
            cached = self.cache.get(h)
            if cached is None:
                todo[h] = text
            else:
                found[h] = cached
        self.count("cache_hits", len(found))
        self.count("cache_misses", len(todo))
        if todo:
            encoded = self.encode_documents(list(todo.values()))
            self.count("docs_encoded", len(encoded))
            for h, emb in zip(todo, encoded):
                self.cache.put(h, emb)
                found[h] = self.cache.get(h)  # the fp16 copy: cold and warm scores agree exactly
        return [found[h] for h in hashes]

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        Q = self.encode_query(query)
        self.count("query_encodings")
        D, mask = pad_documents(self.document_embeddings(documents))
        return maxsim(self._project(Q), self._project(D), mask).tolist()

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        if self.projection is None:
            return x
        return torch.nn.functional.normalize(x.float() @ torch.as_tensor(self.projection, dtype=torch.float32), dim=-1)

    def explain(self, query: str, document: str) -> Explanation:
        """Token-level account of ``score(query, [document])`` (same encoders, no cache)."""
        q_tokens, d_tokens, Q, D = self.tokens(query, document)
        D = torch.as_tensor(np.asarray(D, dtype=np.float16), dtype=torch.float32)  # as stored in the cache
        Q, D = self._project(Q.float()), self._project(D)
        sim = (Q @ D.T).numpy()
        best = sim.argmax(axis=1)
        contributions = sim[np.arange(len(q_tokens)), best]
        return Explanation(q_tokens, d_tokens, sim, best, contributions, float(contributions.sum()))

    def flush(self) -> None:
        if self._cache is not None:
            self._cache.flush()


# -- ColBERT through colbert-ai ---------------------------------------------------------------
def _import_colbert():
    """colbert-ai, with its C++ segmented-MaxSim extension skipped (we score in torch)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from colbert.infra import ColBERTConfig
        from colbert.modeling.checkpoint import Checkpoint
        from colbert.modeling.colbert import ColBERT
    ColBERT.loaded_extensions = True  # try_load_torch_extensions returns early: no 30 s C++ build
    return ColBERTConfig, Checkpoint


def _unaugment(result, pad_token_id: int):
    """Undo colbert-ai's [MASK] query augmentation on ``QueryTokenizer.tensorize`` output:
    augmented positions (attention mask 0) become padding again, which ``ColBERT.query``
    zeroes, so only the query's own tokens enter MaxSim."""
    if isinstance(result, list):  # tensorize(..., bsize=n): a list of (ids, mask) batches
        return [_unaugment(batch, pad_token_id) for batch in result]
    ids, mask, *rest = result
    ids = ids.clone()
    ids[mask == 0] = pad_token_id
    return (ids, mask, *rest)


@contextmanager
def query_augmentation(enabled: bool):
    """Within the block, every colbert-ai ``QueryTokenizer`` pads queries instead of filling
    them with [MASK] tokens when ``enabled`` is False (training uses its own tokenizers).

    Why: query augmentation (Khattab & Zaharia 2020, section 3.2) is learnt; an untrained
    body's [MASK] vectors match everything, and on short queries (NFCorpus titles, a few
    tokens in 32 slots) they drown the real tokens. ``benchmarks/colbert_query_augmentation.py``
    measures step 0 of the identity-initialised MiniLM both ways on the tuning queries."""
    if enabled:
        yield
        return
    from colbert.modeling.tokenization import QueryTokenizer

    original = QueryTokenizer.tensorize

    def tensorize(self, *args, **kwargs):
        return _unaugment(original(self, *args, **kwargs), self.pad_token_id)

    QueryTokenizer.tensorize = tensorize
    try:
        yield
    finally:
        QueryTokenizer.tensorize = original


def checkpoint_query_augmentation(path: str | os.PathLike) -> bool:
    """Whether a checkpoint was trained with [MASK] query augmentation: False only where
    the lab recipe recorded ``query_augmentation: false``; colbert-ai's own default (True)
    for every other checkpoint (colbertv2.0 and friends)."""
    info = Path(path) / "rerank_lab_training.json"
    if not info.exists():
        return True
    return bool(json.loads(info.read_text()).get("recipe", {}).get("query_augmentation", True))


class ColBERTReranker(LateInteractionReranker):
    """ColBERT MaxSim with colbert-ai's ``Checkpoint`` encoders.

    ``checkpoint``: a colbert-ai checkpoint id or folder. ``doc_maxlen`` / ``query_maxlen``
    override the checkpoint's (e.g. for an ablation). ``bf16`` casts the encoder's
    weights to bf16 (about 1.6x faster than fp32 on this CPU); embeddings are stored as fp16.
    ``alpha < 1`` interpolates z-scored MaxSim with the first stage's z-scored scores when
    reranking a Run (``score`` itself stays pure MaxSim). ``query_augmentation``: fill
    queries with [MASK] tokens as colbert-ai does (default: what the checkpoint was trained
    with, see :func:`checkpoint_query_augmentation`).
    """

    name = "colbert"

    def __init__(self, checkpoint: str | os.PathLike = WEIGHTS_DIR, doc_maxlen: int | None = None,
                 query_maxlen: int | None = None, batch_size: int = 32, bf16: bool = True, cache: bool = True,
                 alpha: float = 1.0, name: str | None = None, query_augmentation: bool | None = None):
        super().__init__(batch_size, bf16, cache)
        self.alpha = alpha
        self.checkpoint_name = str(checkpoint)
        self.query_augmentation = query_augmentation
        self.doc_maxlen, self.query_maxlen = doc_maxlen, query_maxlen
        self.name = name or self.name
        self._checkpoint = None

    @property
    def checkpoint(self):
        if self._checkpoint is None:
            ColBERTConfig, Checkpoint = _import_colbert()
            path = resolve_model(self.checkpoint_name)
            overrides = {k: v for k, v in {"doc_maxlen": self.doc_maxlen, "query_maxlen": self.query_maxlen}.items()
                         if v is not None}
            config = ColBERTConfig(checkpoint=path, gpus=0, **overrides)
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._checkpoint = Checkpoint(path, colbert_config=config, verbose=0)
            self._checkpoint.amp_manager.activated = False  # CUDA autocast; bf16 is ours
            if self.bf16:  # bf16 weights: ~1.2x faster than autocast on CPU (no per-op casts)
                self._checkpoint.to(torch.bfloat16)
            if self.query_augmentation is None:
                self.query_augmentation = checkpoint_query_augmentation(path)
            if not self.query_augmentation:  # this instance only: other checkpoints keep colbert-ai's default
                qt = self._checkpoint.query_tokenizer
                augmented = qt.tensorize
                qt.tensorize = lambda *args, **kwargs: _unaugment(augmented(*args, **kwargs), qt.pad_token_id)
        return self._checkpoint

    @property
    def config(self):
        return self.checkpoint.colbert_config

    def settings(self) -> dict:
        return {"family": "colbert", "model": model_identity(self.checkpoint_name),
                "doc_maxlen": self.config.doc_maxlen, "dim": self.config.dim,
                "mask_punctuation": self.config.mask_punctuation, "bf16": self.bf16, "precision": "bf16-weights" if self.bf16 else "fp32"}

    def encode_query(self, query: str) -> torch.Tensor:
        with self.autocast():
            Q = self.checkpoint.queryFromText([query])
        return Q[0].float()

    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        with self.autocast():
            (docs,) = self.checkpoint.docFromText(texts, bsize=self.batch_size, keep_dims=False)
        return [d.float().numpy() for d in docs]

    def tokens(self, query, document):
        ck = self.checkpoint
        q_ids, q_mask = ck.query_tokenizer.tensorize([query])
        d_ids, d_mask = ck.doc_tokenizer.tensorize([document])
        with torch.no_grad(), self.autocast():
            Q = ck.query(q_ids, q_mask)[0].float()
            D = ck.doc(d_ids, d_mask, keep_dims=True)[0].float()
        keep = torch.tensor(ck.mask(d_ids, skiplist=ck.skiplist)[0])
        tok = ck.raw_tokenizer.convert_ids_to_tokens
        if not self.query_augmentation:  # padding carries no vector: leave it out of the heatmap
            real = q_mask[0].bool()
            q_ids, Q = q_ids[:, real], Q[real]
        q_tokens = _marked(tok(q_ids[0].tolist()), self.config.query_token_id, self.config.query_token)
        d_tokens = _marked(tok(d_ids[0][keep].tolist()), self.config.doc_token_id, self.config.doc_token)
        return q_tokens, d_tokens, Q, D[keep].numpy()


def _marked(tokens: list[str], raw: str, shown: str) -> list[str]:
    return [shown if t == raw else t for t in tokens]


# -- zero-shot MaxSim over a sentence encoder's token embeddings ----------------------------------
class ZeroShotMaxSim(LateInteractionReranker):
    """MaxSim over the raw, L2-normalised last-layer token embeddings of ``model`` (all
    tokens but padding, [CLS] and [SEP] included): late interaction with no projection and no
    training, the baseline a trained ColBERT must beat."""

    name = "maxsim"

    def __init__(self, model: str = MINILM, doc_maxlen: int = 256, query_maxlen: int = 64, batch_size: int = 32,
                 bf16: bool = True, cache: bool = True, name: str | None = None, device: str = "cpu"):
        super().__init__(batch_size, bf16, cache)
        self.model_name, self.doc_maxlen, self.query_maxlen = model, doc_maxlen, query_maxlen
        self.name = name or self.name
        self.device = torch.device(device)  # "cuda" for distillation teachers on a GPU
        self._model = self._tokenizer = None

    def _load(self):
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            path = resolve_model(self.model_name)
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            self._model = AutoModel.from_pretrained(path, dtype=torch.float32).eval().to(self.device)
        return self._model, self._tokenizer

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def settings(self) -> dict:
        return {"family": "maxsim", "model": model_identity(self.model_name), "doc_maxlen": self.doc_maxlen,
                "bf16": self.bf16}

    def _encode(self, texts: list[str], max_length: int) -> tuple[list[np.ndarray], list[list[int]]]:
        model, tokenizer = self._load()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths share a batch
        out: list = [None] * len(texts)
        ids_out: list = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            with torch.no_grad(), self.autocast():
                hidden = model(**batch.to(self.device)).last_hidden_state
            hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu()
            batch = batch.to("cpu")
            for row, i in enumerate(idx):
                keep = batch["attention_mask"][row].bool()
                out[i] = hidden[row][keep].numpy()
                ids_out[i] = batch["input_ids"][row][keep].tolist()
        return out, ids_out

    def encode_query(self, query: str) -> torch.Tensor:
        return torch.from_numpy(self._encode([query], self.query_maxlen)[0][0])

    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        return self._encode(texts, self.doc_maxlen)[0]

    def tokens(self, query, document):
        (Q,), (q_ids,) = self._encode([query], self.query_maxlen)
        (D,), (d_ids,) = self._encode([document], self.doc_maxlen)
        tok = self._tokenizer.convert_ids_to_tokens
        return tok(q_ids), tok(d_ids), torch.from_numpy(Q), D


# -- registry factories ---------------------------------------------------------------------------
def colbert(checkpoint: str | os.PathLike | None = None, **kwargs) -> ColBERTReranker:
    """The lab-trained ColBERT (MiniLM body + 384-d projection) unless ``checkpoint`` is given;
    its first-stage interpolation ``alpha`` is the one ``--tune`` stored (held-out train
    queries, dev split), else :data:`DEFAULT_ALPHA`; pass ``alpha=1.0`` for pure MaxSim."""
    if checkpoint is None:
        if not (WEIGHTS_DIR / "artifact.metadata").exists():
            raise FileNotFoundError(
                f"the lab-trained ColBERT checkpoint is missing ({WEIGHTS_DIR}). Build it with "
                f"`{TRAIN_COMMAND}` (about 15 min on a 2-core CPU), or pass a checkpoint: "
                f"ColBERTReranker('colbert-ir/colbertv2.0').")
        checkpoint = WEIGHTS_DIR
        info = WEIGHTS_DIR / "rerank_lab_training.json"
        if "alpha" not in kwargs:  # tuned on train/dev splits (`--tune-only`), else an equal-weight mix
            tuned = json.loads(info.read_text()).get("alpha") if info.exists() else None
            kwargs["alpha"] = float(tuned if tuned is not None else DEFAULT_ALPHA)
    return ColBERTReranker(checkpoint, **kwargs)


def zero_shot(model: str = MINILM, **kwargs) -> ZeroShotMaxSim:
    """Zero-shot MaxSim over all-MiniLM-L6-v2 token embeddings."""
    return ZeroShotMaxSim(model, **kwargs)


def pca_projection(embeddings: Sequence[np.ndarray], k: int) -> np.ndarray:
    """(dim, k) matrix of the top-``k`` uncentred principal directions of token embeddings,
    for :attr:`LateInteractionReranker.projection`."""
    X = torch.as_tensor(np.concatenate([np.asarray(e, dtype=np.float32) for e in embeddings]))
    _, _, vt = torch.linalg.svd(X, full_matrices=False)
    return vt[:k].T.contiguous().numpy()


def storage_bytes(embeddings: Sequence[np.ndarray], dim: int | None = None, bytes_per_value: int = 2) -> float:
    """Mean bytes per document to store its token embeddings (fp16 by default)."""
    if not embeddings:
        return 0.0
    width = dim or int(embeddings[0].shape[1])
    return float(np.mean([e.shape[0] for e in embeddings]) * width * bytes_per_value)


__all__ = ["ColBERTReranker", "Explanation", "LateInteractionReranker", "TokenCache", "ZeroShotMaxSim",
           "colbert", "maxsim", "pad_documents", "pca_projection", "plot_explanation", "storage_bytes",
           "zero_shot"]
