"""Pointwise cross-encoders: (query, document) -> relevance, through transformers.

Nogueira & Cho, "Passage Re-ranking with BERT" (2019). Any sequence-classification
reranker loads by model id or local folder (``cross-encoder/ms-marco-MiniLM-L-6-v2``,
``BAAI/bge-reranker-base``, the lab model); a 1-logit head scores with its logit, a
2-logit head with the log-probability of the "relevant" class (index 1). Scores equal
sentence-transformers ``CrossEncoder.predict`` (same tokenisation, ``longest_first``
truncation) to 1e-4 in ``mode="exact"``.

* modes: ``exact`` (fp32), ``fast`` (bf16: OpenVINO fuses attention and runs bf16 matmuls on
  AVX512-BF16/AMX CPUs; the torch backend casts the weights to bf16 instead), ``int8``
  (OpenVINO: the encoder's Linear weights stored as int8 per output channel and their inputs
  quantised to int8 per token at run time, in groups of 128, for the VNNI kernels; the rest
  bf16. Data-free: no calibration set to skew it. Faster than ``fast`` but moves scores more;
  the torch backend: torch dynamic int8).
* close calls: ``fast`` and ``int8`` re-score in ``exact`` fp32 the candidates whose approximate
  scores lie within ``refine_margin`` of a neighbour among the top ``refine_top`` of a query's
  list, so that rounding does not decide near ties at the top (bf16 moves a score by about 0.01
  on average, and two documents can sit 0.001 apart). Those exact scores come from, and go to,
  the same cache as ``mode="exact"``; the approximate scores are cached unrefined, so the
  margin can change without re-scoring. ``refine_margin=0`` turns it off.
* backends: ``backend="auto"`` (default) runs every mode through OpenVINO when it is installed,
  else through torch; ``"openvino"`` / ``"torch"`` force one. ``exact`` through OpenVINO is
  still fp32 (``INFERENCE_PRECISION_HINT=f32``: scores agree with torch to about 1e-5) but its
  fused kernels are faster than torch eager on the CPU. Every mode tokenises once per call and
  batches by token length. The OpenVINO graphs are converted (and quantised) once per model
  identity and cached on disk.
* long documents: truncated pairs are counted (``counters["truncated_pairs"]``), or scored as
  sliding passage windows aggregated by ``firstp`` / ``maxp`` / ``sump`` (Dai & Callan,
  "Deeper Text Understanding for IR with Contextual Neural Language Modeling", SIGIR 2019;
  PyTerrier's ``pt.text.sliding``).
* a disk score cache (sqlite, WAL, committed per query) keyed on model identity (id + weights
  hash), max length, mode, passage settings, query and document: re-runs cost nothing and an
  interrupted run resumes.
* ``alpha < 1`` interpolates with the first stage: ``alpha*z(CE) + (1-alpha)*z(first stage)``
  per query, over the first ``depth`` candidates (the rest keep their order below).

Usage::

    ce = CrossEncoder("cross-encoder/ms-marco-MiniLM-L-6-v2", mode="fast")
    ce.score("what is bm25", ["BM25 is a ranking function ...", "Paris is ..."])
    run = (hybrid() % 100 >> ce)(dataset)
    lab = lab_cross_encoder()            # the lab-trained default, registered as "ce"
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ..cache import cache_dir, stable_hash
from ..models import model_identity, resolve_model
from .base import BaseReranker

MODES = ("exact", "fast", "int8")
BACKENDS = ("auto", "openvino", "torch")
AGGREGATIONS = ("firstp", "maxp", "sump")
# int8: 128 activations share one scale. Chosen on held-out SciFact *train* queries as the fastest
# group size whose nDCG@10 stayed within 0.002 of exact (64: 7% slower; 256: slower and coarser).
INT8_ACTIVATION_GROUP = 128
# Embeddings, pooler and classifier stay float: they cost no matmul time worth saving. (Keeping
# the FFN output projections in bf16 too was tried: rho against exact 0.99917 -> 0.99939 on
# SciFact train pairs, but ~10% slower, under 3x sentence-transformers.)
INT8_FLOAT_LAYERS = (r".*embeddings.*", r".*pooler.*", r".*classifier.*")
# fast/int8: neighbours closer than this among the top 10 are re-scored in fp32. Chosen with
# benchmarks/cross_encoder_fast_fidelity.py on NFCorpus dev and SciFact train, never on test, as
# the smallest margin of 0.005/0.01/0.015/0.02/0.03 at which fast kept every simulated 100-query
# run within 0.002 nDCG@10 of exact on both (without it: 99.8% and 87.3%); it re-scores 5% of
# pairs at depth 20 (0.01: 9%, one moved query fewer per split).
REFINE_MARGIN = 0.005
REFINE_TOP = 10
LAB_CE_DIR = Path(__file__).resolve().parent.parent / "weights" / "lab-ce"
TRAIN_COMMAND = "python -m rerank_lab.train.cross_encoder"


class CrossEncoder(BaseReranker):
    def __init__(self, model: str | os.PathLike, max_length: int = 256, batch_size: int = 32,
                 mode: str = "exact", activation: str | None = None, passages: str | None = None,
                 passage_tokens: int | None = None, stride: int | None = None, cache: bool = True,
                 cache_path: str | os.PathLike | None = None, depth: int | None = None, alpha: float = 1.0,
                 threads: int | None = None, backend: str = "auto", refine_margin: float | None = None,
                 refine_top: int = REFINE_TOP, name: str = "cross_encoder"):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if passages is not None and passages not in AGGREGATIONS:
            raise ValueError(f"unknown passage aggregation {passages!r}: use one of {', '.join(AGGREGATIONS)} or None")
        if activation not in (None, "sigmoid", "softmax"):
            raise ValueError(f"unknown activation {activation!r}: use None, 'sigmoid' (1 logit) or 'softmax' (2 logits)")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if refine_margin is not None and refine_margin < 0:
            raise ValueError(f"refine_margin must be >= 0 (0 turns close-call refinement off), got {refine_margin}")
        if refine_top < 1:
            raise ValueError(f"refine_top must be >= 1, got {refine_top}")
        self.model_name, self.max_length, self.batch_size, self.mode = str(model), max_length, batch_size, mode
        self.activation, self.passages, self.passage_tokens, self.stride = activation, passages, passage_tokens, stride
        self.depth, self.alpha, self.threads, self.name = depth, alpha, threads, name
        self.backend = _resolve_backend(backend)
        self.refine_margin = 0.0 if mode == "exact" else (REFINE_MARGIN if refine_margin is None else refine_margin)
        self.refine_top = refine_top
        self._openvino = self._exact_twin = None
        self.use_cache = cache
        self._cache_path = Path(cache_path) if cache_path else None
        self._model = self._tokenizer = self._db = None
        self._lock = threading.Lock()

    # -- loading ----------------------------------------------------------------------
    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            path = resolve_model(self.model_name)
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
            except OSError as exc:
                raise OSError(f"cannot load cross-encoder {self.model_name!r}: give a local folder or a hub id of a "
                              f"sequence-classification model (offline, only local folders load). {exc}") from exc
            if model.config.num_labels not in (1, 2):
                raise ValueError(f"{self.model_name!r} has {model.config.num_labels} labels; a reranker head has 1 "
                                 f"(relevance logit) or 2 (not relevant, relevant)")
            model.eval()
            if self.backend == "openvino":
                self._openvino = _openvino_request(model, self._tokenizer, self.identity, self.mode,
                                                   threads=self.threads)
            elif self.mode == "fast":
                model = model.to(torch.bfloat16)
            elif self.mode == "int8":
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            if self.threads:
                torch.set_num_threads(self.threads)
            self._model = model
            if self.refine_margin > 0:
                self._exact()._load()  # load both precisions up front, not at the first close call
        return self._model, self._tokenizer

    def _exact(self) -> "CrossEncoder":
        """The fp32 twin that re-scores close calls (same model, settings and cache file)."""
        if self._exact_twin is None:
            self._exact_twin = CrossEncoder(
                self.model_name, max_length=self.max_length, batch_size=self.batch_size, mode="exact",
                activation=self.activation, passages=self.passages, passage_tokens=self.passage_tokens,
                stride=self.stride, cache=self.use_cache, cache_path=self._cache_path, threads=self.threads,
                backend=self.backend, name=f"{self.name}-exact")
        return self._exact_twin

    @property
    def identity(self) -> str:
        return model_identity(self.model_name)

    # -- scoring ----------------------------------------------------------------------
    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        documents = ["" if d is None else str(d) for d in documents]
        if not documents:
            return []
        scores = self._cached_scores(query, documents)
        if self.refine_margin > 0:
            scores = self._refine(query, documents, scores)
        return scores

    def _refine(self, query: str, documents: list[str], scores: list[float]) -> list[float]:
        """Replace the approximate scores of close calls at the top by exact ones. A few rounds,
        since an exact score can land next to a neighbour it was not close to before."""
        scores, refined = list(scores), set()
        for _ in range(3):
            todo = [i for i in close_calls(scores, self.refine_margin, self.refine_top) if i not in refined]
            if not todo:
                break
            for i, s in zip(todo, self._exact().score(query, [documents[i] for i in todo])):
                scores[i] = s
            refined.update(todo)
        self.count("refined_pairs", len(refined))
        return scores

    def _cached_scores(self, query: str, documents: list[str]) -> list[float]:
        keys = [self._key(query, d) for d in documents]
        cached = self._cache_get(keys) if self.use_cache else {}
        self.count("cache_hits", len(cached))
        todo = sorted({k: i for i, k in enumerate(keys) if k not in cached}.items(), key=lambda x: x[1])
        if todo:
            self.count("cache_misses", len(todo))
            fresh = self._score_uncached(query, [documents[i] for _, i in todo])
            new = {k: float(s) for (k, _), s in zip(todo, fresh)}
            if self.use_cache:
                self._cache_put(new)  # one commit per call = per query in a pipeline: resumable
            cached.update(new)
        return [cached[k] for k in keys]

    def _score_uncached(self, query: str, documents: list[str]) -> list[float]:
        _, tokenizer = self._load()
        budget = self.max_length - tokenizer.num_special_tokens_to_add(pair=True)
        q_len = len(tokenizer(query, add_special_tokens=False)["input_ids"])
        docs = tokenizer(documents, add_special_tokens=False, return_offsets_mapping=self.passages is not None,
                         verbose=False)
        too_long = [q_len + len(ids) > budget for ids in docs["input_ids"]]
        self.count("pairs", len(documents))
        if self.passages is None:
            self.count("truncated_pairs", sum(too_long))
            return self.predict([(query, d) for d in documents]).tolist()
        # Sliding windows over document tokens, cut back to text so the pair tokenises as usual.
        window = self.passage_tokens or max(budget - q_len, 16)
        stride = self.stride or max(window // 2, 1)
        pairs, owner = [], []
        for i, (doc, offsets) in enumerate(zip(documents, docs["offset_mapping"])):
            starts = [0] if self.passages == "firstp" else list(range(0, max(len(offsets) - window, 0) + 1, stride))
            if starts[-1] + window < len(offsets) and self.passages != "firstp":
                starts.append(len(offsets) - window)
            for s in starts:
                piece = offsets[s:s + window]
                pairs.append((query, doc[piece[0][0]:piece[-1][1]] if piece else ""))
                owner.append(i)
        self.count("passages", len(pairs))
        self.count("truncated_pairs", sum(1 for i, t in enumerate(too_long) if t and self.passages == "firstp"))
        scores = self.predict(pairs)
        out = np.full(len(documents), -np.inf if self.passages == "maxp" else 0.0)
        for i, s in zip(owner, scores):
            out[i] = max(out[i], s) if self.passages == "maxp" else (s if self.passages == "firstp" else out[i] + s)
        return out.tolist()

    def predict(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Scores of (query, text) pairs, no cache: tokenised once, batched by token length."""
        import torch

        model, tokenizer = self._load()
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        enc = tokenizer([p[0] for p in pairs], [p[1] for p in pairs], truncation="longest_first",
                        max_length=self.max_length, padding=False)
        features = [{k: enc[k][i] for k in enc.keys()} for i in range(len(pairs))]
        order = np.argsort([-len(f["input_ids"]) for f in features], kind="stable")
        out = np.empty(len(pairs), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                # OpenVINO plans kernels per input shape: bucketed widths keep the plans few and reused
                batch = _pad([features[i] for i in idx], tokenizer, multiple=32 if self._openvino is not None else 1)
                if self._openvino is not None:
                    logits = torch.from_numpy(self._openvino.infer({k: v.numpy() for k, v in batch.items()})[0].copy())
                else:
                    logits = model(**batch).logits.float()
                out[idx] = self._head(logits).numpy()
        return out

    def _head(self, logits):
        import torch

        if logits.shape[1] == 1:
            s = logits[:, 0]
            return torch.sigmoid(s) if self.activation == "sigmoid" else s
        if self.activation in ("softmax", "sigmoid"):
            return torch.softmax(logits, dim=1)[:, 1]
        return torch.log_softmax(logits, dim=1)[:, 1]

    # -- cache ------------------------------------------------------------------------
    def _key(self, query: str, document: str) -> str:
        # Both exact backends compute in fp32 and agree to ~1e-5: they share cached scores.
        mode = self.mode if self.backend == "torch" or self.mode == "exact" else f"{self.mode}-{self.backend}"
        if mode == "int8-openvino":
            mode += "-dynamic"  # scores of the earlier static-int8 recipe sit under the bare tag
        return stable_hash(self.identity, self.max_length, mode, self.activation, self.passages,
                           self.passage_tokens, self.stride, query, document, length=32)

    @property
    def cache_path(self) -> Path:
        return self._cache_path or cache_dir("cross_encoder") / "scores.sqlite"

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.cache_path, timeout=60, check_same_thread=False)
            # WAL + a commit per write: a killed process loses at most the uncommitted call,
            # never the file.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL NOT NULL)")
            db.commit()
            self._db = db
        return self._db

    def _cache_get(self, keys: list[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        with self._lock:
            db = self._connection()
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                rows = db.execute(f"SELECT key, score FROM scores WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                found.update(rows.fetchall())
        return found

    def _cache_put(self, scores: dict[str, float]) -> None:
        with self._lock:
            db = self._connection()
            with db:  # one transaction
                db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?)", list(scores.items()))

    def close(self) -> None:
        if self._exact_twin is not None:
            self._exact_twin.close()
        if self._db is not None:
            self._db.close()
            self._db = None


def close_calls(scores: Sequence[float], margin: float, top: int) -> list[int]:
    """Indices of the candidates that sit within ``margin`` of a neighbour in score order,
    among the first ``top`` (and any tied within ``margin`` of the ``top``-th).

    >>> close_calls([3.450, 3.449, 1.1, 0.9], margin=0.01, top=10)
    [0, 1]
    """
    if len(scores) < 2 or margin <= 0:
        return []
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ranked = np.asarray(scores, dtype=np.float64)[order]
    floor = ranked[min(top, len(ranked)) - 1] - margin
    close = set()
    for i in range(len(ranked) - 1):
        if ranked[i] < floor:
            break
        if ranked[i] - ranked[i + 1] < margin:
            close.update((int(order[i]), int(order[i + 1])))
    return sorted(close)


def _pad(features: list[dict], tokenizer, multiple: int = 1) -> dict:
    """Right/left-pad one batch to its longest member, rounded up to ``multiple`` (cheaper
    than ``tokenizer.pad``)."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    width = -(-width // multiple) * multiple
    pad_values = {"input_ids": tokenizer.pad_token_id or 0}
    left = tokenizer.padding_side == "left"
    out = {}
    for key in features[0]:
        fill = pad_values.get(key, 0)
        rows = [([fill] * (width - len(f[key])) + list(f[key])) if left else (list(f[key]) + [fill] * (width - len(f[key])))
                for f in features]
        out[key] = torch.tensor(rows, dtype=torch.long)
    return out


def _resolve_backend(backend: str) -> str:
    """``"auto"``: OpenVINO when it is installed (faster on the CPU in every mode), else torch."""
    if backend != "auto":
        return backend
    import importlib.util

    return "openvino" if importlib.util.find_spec("openvino") is not None else "torch"


def _openvino_request(model, tokenizer, identity: str, mode: str = "fast", threads: int | None = None,
                      profile: bool = False):
    """An OpenVINO infer request running ``model`` on the CPU: ``exact`` in fp32, ``fast`` in
    bf16, ``int8`` with its encoder Linear weights int8 and their inputs quantised per token at
    run time (dynamic quantisation). The converted graph (fp32 weights; the precision is an
    inference hint) is cached per model identity and OpenVINO version, so conversion happens
    once; the int8-weight graph beside it. ``threads``: OpenVINO's inference threads (default:
    all cores). ``profile``: per-node timings in ``profiling_info``
    (``benchmarks/cross_encoder_kernel_profile.py``)."""
    import torch

    try:
        import openvino as ov
    except ImportError as exc:
        raise ImportError("backend='openvino' needs OpenVINO: `pip install openvino`, or pass "
                          "backend='torch'") from exc
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    folder = cache_dir("openvino") / stable_hash(identity, ov.__version__, names, length=24)
    core = ov.Core()
    if not (folder / "model.xml").exists():
        example = tokenizer(["a query"] * 2, ["a document text"] * 2, padding=True, return_tensors="pt")
        example = {n: example[n] for n in names}
        with torch.no_grad():
            converted = ov.convert_model(model, example_input=example,
                                         input=[(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in names])
        _save_graph(converted, folder)
    graph = folder / "model.xml"
    config = {"INFERENCE_PRECISION_HINT": "f32" if mode == "exact" else "bf16", "PERFORMANCE_HINT": "LATENCY",
              "PERF_COUNT": "YES" if profile else "NO"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = str(threads)
    if mode == "int8":
        graph = _int8_weight_graph(core, folder)
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = str(INT8_ACTIVATION_GROUP)
    compiled = core.compile_model(core.read_model(graph), "CPU", config)
    return compiled.create_infer_request()


def _int8_weight_graph(core, folder: Path) -> Path:
    """``folder/w8/model.xml``: the converted graph with its encoder Linear weights stored as
    int8, one scale and zero point per output channel (NNCF weight compression, data-free),
    except :data:`INT8_FLOAT_LAYERS`."""
    target = folder / "w8"
    if (target / "model.xml").exists():
        return target / "model.xml"
    try:
        import nncf
    except ImportError as exc:
        raise ImportError("mode='int8' compresses weights through NNCF: `pip install nncf`, or pass "
                          "backend='torch' for torch dynamic int8") from exc
    keep_float = nncf.IgnoredScope(patterns=list(INT8_FLOAT_LAYERS), validate=False)
    compressed = nncf.compress_weights(core.read_model(folder / "model.xml"), mode=nncf.CompressWeightsMode.INT8_ASYM,
                                       ignored_scope=keep_float)
    _save_graph(compressed, target)
    return target / "model.xml"


def _save_graph(graph, folder: Path) -> None:
    """Write ``folder/model.xml`` (+ .bin) through a staging folder renamed into place, so the
    folder appears complete or not at all (a killed process leaves no half-written graph)."""
    import shutil

    import openvino as ov

    staging = folder.with_name(folder.name + f".tmp{os.getpid()}")
    try:
        ov.save_model(graph, staging / "model.xml", compress_to_fp16=False)
        staging.rename(folder)
    except OSError:
        if not (folder / "model.xml").exists():  # a real failure, not another process winning the race
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def lab_cross_encoder(path: str | os.PathLike = LAB_CE_DIR, **kwargs) -> CrossEncoder:
    """The lab-trained cross-encoder (``rerank_lab/weights/lab-ce``), with the interpolation
    weight and depth tuned on train/dev queries (``interpolation.json``). Keyword arguments
    override them (e.g. ``alpha=1.0`` for the pure cross-encoder)."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"the lab cross-encoder weights are missing from {path}. Make them with "
                                f"`{TRAIN_COMMAND}` (about 35 CPU minutes plus 20 of tuning; on a GPU see "
                                f"scripts/gpu_sweep_lab_ce.py), or give a model id: "
                                f"CrossEncoder('cross-encoder/ms-marco-MiniLM-L-6-v2')")
    settings = {"mode": "fast", "name": "ce"}
    trained = path / "training.json"
    if trained.exists():  # score with the length it was trained with
        settings["max_length"] = json.loads(trained.read_text())["config"]["max_length"]
    tuned = path / "interpolation.json"
    if tuned.exists():
        info = json.loads(tuned.read_text())
        settings.update(alpha=info["alpha"], depth=info["depth"], passages=info.get("passages"))
    settings.update(kwargs)
    return CrossEncoder(str(path), **settings)


def throughput(model: str | os.PathLike, pairs: Sequence[tuple[str, str]], batch_sizes: Sequence[int] = (1, 8, 32),
               modes: Sequence[str] = ("exact", "fast"), max_length: int = 256) -> list[dict]:
    """Measured pairs/second of :meth:`CrossEncoder.predict` per (mode, batch size), no cache.

    Usage::

        rows = throughput(LAB_CE_DIR, pairs[:256])   # [{"mode", "batch_size", "pairs_per_s"}, ...]
    """
    import time

    rows = []
    for mode in modes:
        for batch_size in batch_sizes:
            ce = CrossEncoder(model, max_length=max_length, batch_size=batch_size, mode=mode, refine_margin=0,
                              cache=False)  # predict() never refines: measure the model alone
            ce.predict(pairs[:4])  # load and warm up
            start = time.perf_counter()
            ce.predict(pairs)
            seconds = time.perf_counter() - start
            rows.append({"mode": mode, "batch_size": batch_size, "pairs_per_s": len(pairs) / seconds})
    return rows
