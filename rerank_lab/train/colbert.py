"""Train a small ColBERT in-process with colbert-ai's own training loop, on CPU.

Recipe (the lab's ColBERT, registry name ``"colbert"``):

* body: all-MiniLM-L6-v2 (the bi-encoder of the dense first stage) + a linear projection
  384 -> ``dim``. By default ``dim`` is 384 and the projection starts as the identity, so step 0
  is MaxSim over the body's own token embeddings (the zero-shot baseline, up to colbert-ai's
  [Q]/[D] markers and [MASK] augmentation); ``init="pca"`` with a smaller ``dim`` starts from the
  top right-singular vectors of the body's token embeddings instead;
* data: BEIR *train* splits of SciFact and NFCorpus (never test): (query, positive, hybrid
  hard negatives) groups from :func:`rerank_lab.train.negatives.mine_groups`, the two sets
  interleaved so that both are seen equally; 100 SciFact train queries are held out of
  training to tune ``alpha``, and train queries citing their documents are dropped
  (NFCorpus tunes on its dev split). The committed weights predate that drop: their
  ``rerank_lab_training.json`` records the held-out ids they were tuned on. ``supervision="title"``
  or ``"ict"`` reads no judgment: pseudo-queries from each corpus (:mod:`rerank_lab.train.pseudo`),
  round-trip filtered, with the same hard negatives and teacher;
* queries are padded, not filled with colbert-ai's [MASK] tokens (``query_augmentation=False``,
  see :func:`rerank_lab.components.colbert_ai.query_augmentation`): with the identity projection,
  step 0 is then close to zero-shot MaxSim instead of far below it on short queries;
* loss: colbert-ai's ``colbert.training.training.train`` under CPU bf16 autocast: KL divergence
  to an ensemble teacher (:func:`ensemble_teacher`: z-scored zero-shot MaxSim + first-stage
  reciprocal rank + a bonus for the judged positive; Hofstätter et al. 2020) plus in-batch
  negatives, or with ``teacher="none"`` softmax cross-entropy of the positive against its hard
  negatives (Khattab & Zaharia, SIGIR 2020; Santhanam et al., "ColBERTv2", NAACL 2022).

colbert-ai wraps the model in ``DistributedDataParallel``, which hangs on a CPU without a
process group; :func:`single_process` swaps it for a pass-through while training runs.

Usage::

    python -m rerank_lab.train.colbert --tune             # -> rerank_lab/weights/colbert-minilm (+ alpha)
    python -m rerank_lab.train.colbert --tune-only        # re-tune alpha on the held-out queries
    python -m rerank_lab.train.colbert --steps 2 --datasets toy --output /tmp/ck   # smoke
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..components.colbert_ai import colbert_device, import_colbert, query_augmentation, single_process
from ..components.lab_weights import LAB_COLBERT_DIR
from ..components.models import MINILM, resolve_model
from ..components.provenance import write_provenance
from ..core.provenance import TrainingData
from ..core.files import atomic_dir
from ..data import load_dataset
from .provenance import recipe_provenance


LABEL_FREE = ("title", "ict")  # the LLM's pseudo-queries take an hour per corpus on 2 cores: the CE recipe has them


@dataclass
class ColBERTTrainConfig:
    output: str = str(LAB_COLBERT_DIR)
    base: str = MINILM
    datasets: tuple[str, ...] = ("scifact", "nfcorpus")
    split: str = "train"
    dim: int = 384                    # the body's width: the projection starts as the identity
    doc_maxlen: int = 128              # while training (CPU budget); inference uses infer_doc_maxlen
    infer_doc_maxlen: int = 256
    query_maxlen: int = 32
    steps: int = 120                   # the committed weights: ~13 CPU minutes on 2 cores
    batch_size: int = 16
    nway: int = 8                      # 1 positive + 7 hard negatives per query (+ in-batch negatives)
    lr: float = 1e-5                   # gentle: step 0 is already zero-shot MaxSim
    warmup: int = 10
    train_layers: int = 2              # top transformer layers trained (+ projection); -1: all
    in_batch_negatives: bool = True
    positives_per_query: int = 2
    bm25_depth: int = 50
    bf16: bool | None = None           # None: bf16 autocast only where the CPU has bf16 kernels
    fp16_weights: bool = True          # save the checkpoint in fp16 (~45 MB instead of ~90 MB)
    seed: int = 12345
    allow_test: bool = False           # only for the toy set, whose only split is "test"
    pca_docs: int = 256
    init: str = "identity"                  # projection start: "pca" (top-dim PCA) or "identity" (dim == hidden size)
    teacher: str = "ensemble"              # "none": labels; "ensemble": distil hybrid ranks + zero-shot MaxSim + labels
    teacher_scale: float = 2.0         # teacher logits = scale * (z(MaxSim) + z(hybrid RRF)) / 2 + label_bonus
    label_bonus: float = 2.0
    retriever: str = "hybrid"            # first stage the hard negatives come from: "bm25" or "hybrid"
    holdout_queries: int = 100         # train queries kept out of training to tune alpha (no dev split)
    query_augmentation: bool = False   # colbert-ai's [MASK] query padding; off: step 0 ~ zero-shot MaxSim
    supervision: str = "labels"        # "labels": judged train queries; "title" / "ict": the corpus alone
    pseudo_queries: int = 1000         # label-free: documents asked for a pseudo-query, per dataset
    roundtrip_k: int = 20              # label-free: kept when the first stage brings the source back this high
    device: str = "auto"               # "auto": the GPU when there is one, else the CPU
    extra: dict = field(default_factory=dict)


@contextmanager
def frozen_lower_layers(train_layers: int):
    """Make colbert-ai's trainer build a ColBERT whose embeddings and lower transformer layers
    are frozen: backward then runs through the top ``train_layers`` layers only (CPU budget)."""
    import colbert.training.training as training

    original = training.ColBERT
    if train_layers < 0:
        yield
        return

    class PartlyFrozenColBERT(original):  # type: ignore[misc,valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            layers = self.bert.encoder.layer
            keep = set(range(len(layers) - train_layers, len(layers)))
            for name, param in self.bert.named_parameters():
                index = name.split(".")[2] if name.startswith("encoder.layer.") else None
                param.requires_grad = index is not None and int(index) in keep

    training.ColBERT = PartlyFrozenColBERT
    try:
        yield
    finally:
        training.ColBERT = original


def build_initial_checkpoint(cfg: ColBERTTrainConfig, folder: Path, texts: list[str]) -> Path:
    """MiniLM body + a ``dim``-wide projection: the identity when ``cfg.init == "identity"``
    (step 0 then scores MaxSim over the body's own token embeddings, the zero-shot baseline,
    up to colbert-ai's markers and [MASK] augmentation), else the uncentred PCA of token
    embeddings."""
    ColBERTConfig, _ = import_colbert()
    from colbert.modeling.colbert import ColBERT

    base = resolve_model(cfg.base)
    config = ColBERTConfig(checkpoint=base, dim=cfg.dim, doc_maxlen=cfg.doc_maxlen, query_maxlen=cfg.query_maxlen,
                           gpus=0)
    model = ColBERT(name=base, colbert_config=config)
    with torch.no_grad():
        if cfg.init == "identity":
            hidden = model.bert.config.hidden_size
            if cfg.dim != hidden:
                raise ValueError(f"init='identity' needs dim == the body's hidden size ({hidden}), got dim={cfg.dim}")
            model.linear.weight.copy_(torch.eye(hidden))
            model.save(str(folder))
            return folder
        if cfg.init != "pca":
            raise ValueError(f"unknown init {cfg.init!r}: use 'pca' or 'identity'")
        ids, mask = _tensorize_docs(config, texts[: cfg.pca_docs])
        hidden = model.bert(ids, attention_mask=mask)[0][mask.bool()]
        hidden = torch.nn.functional.normalize(hidden, dim=-1)
        _, _, vt = torch.linalg.svd(hidden, full_matrices=False)
        model.linear.weight.copy_(vt[: cfg.dim])
    model.save(str(folder))
    return folder


def _tensorize_docs(config, texts):
    from colbert.modeling.tokenization import DocTokenizer

    return DocTokenizer(config).tensorize(texts)


def training_examples(cfg: ColBERTTrainConfig) -> tuple[list, dict, list, dict]:
    """Triples ``[qid, pos, neg, ...]`` over one shared collection, interleaved by dataset."""
    from .negatives import mine_groups, negatives_retriever, split_queries
    from .pseudo import label_free_groups

    rng = random.Random(cfg.seed)
    collection: list[str] = []
    pid_of: dict[tuple[str, str], int] = {}
    queries: dict[str, str] = {}
    per_dataset: list[list[list]] = []
    stats: dict = {}
    if cfg.teacher not in {"none", "ensemble"}:
        raise ValueError(f"unknown teacher {cfg.teacher!r}: use 'none' or 'ensemble'")
    if cfg.supervision not in ("labels", *LABEL_FREE):
        raise ValueError(f"unknown supervision {cfg.supervision!r}: use 'labels', {', '.join(map(repr, LABEL_FREE))}")
    teacher = ensemble_teacher(cfg) if cfg.teacher == "ensemble" else None
    for name in cfg.datasets:
        dataset = load_dataset(name, split=cfg.split)
        if cfg.split == "train":
            train_ids, tune_ids, tune_split = split_queries(name, cfg.holdout_queries, cfg.seed)
        else:  # the toy set: every query trains
            train_ids, tune_ids, tune_split = sorted(dataset.queries), [], cfg.split
        retriever = negatives_retriever(cfg.retriever)
        texts: dict[str, str] = {}
        if cfg.supervision == "labels":
            groups = mine_groups(dataset, retriever, n_negatives=cfg.nway - 1, depth=cfg.bm25_depth,
                                 positives_per_query=cfg.positives_per_query, seed=cfg.seed, query_ids=train_ids,
                                 allow_test=cfg.allow_test)
        else:
            groups, texts = label_free_groups(dataset, retriever, cfg.supervision, cfg.pseudo_queries, cfg.roundtrip_k,
                                              n_negatives=cfg.nway - 1, depth=cfg.bm25_depth, seed=cfg.seed)
        rng.shuffle(groups)
        if teacher is not None:  # teacher scores cost a MaxSim pass: only for the groups training will read
            groups = groups[: cfg.steps * cfg.batch_size // len(cfg.datasets) + 1]

        def pid(doc_id: str) -> int:
            key = (name, doc_id)
            if key not in pid_of:
                pid_of[key] = len(collection)
                collection.append(text(doc_id))
            return pid_of[key]

        def text(doc_id: str) -> str:  # a pseudo-query's positive (or a title recipe's body) over the corpus text
            return texts[doc_id] if doc_id in texts else dataset.corpus[doc_id].full_text

        triples = []
        for g in groups:
            qid = f"{name}:{g.query_id}"
            queries[qid] = g.query
            pids = [pid(d) for d in [g.positive, *g.negatives]]
            if teacher is None:
                triples.append([qid, *pids])
            else:  # colbert-ai distils from [qid, (pid, score), ...] with a KL loss
                logits = teacher(g, [text(d) for d in [g.positive, *g.negatives]])
                triples.append([qid, *[[p, float(t)] for p, t in zip(pids, logits)]])
        rng.shuffle(triples)
        per_dataset.append(triples)
        stats[name] = {"queries": len({t[0] for t in triples}), "groups": len(triples),
                       # label-free: no judged query trained (its pseudo-queries add no positives)
                       "trained_query_ids": sorted({g.query_id for g in groups}) if cfg.supervision == "labels"
                       else None,
                       "tuning": {"split": tune_split, "query_ids": tune_ids}}
    # interleave: dataset A, B, A, B, ... cycling the shorter ones, so every batch mixes both
    longest = max(len(t) for t in per_dataset)
    needed = cfg.steps * cfg.batch_size
    length = min(longest, max(needed // len(per_dataset) + 1, 1))
    examples = [ts[i % len(ts)] for i in range(length) for ts in per_dataset if ts]
    return examples, queries, collection, stats


def ensemble_teacher(cfg: ColBERTTrainConfig):
    """Teacher logits for one training group: the strongest zero-shot signals of the lab,
    z-scored within the group and averaged (MaxSim over the frozen body's tokens; the first
    stage's reciprocal rank, 1/(60 + rank), 0 when unretrieved), scaled, plus ``label_bonus`` on
    the judged positive. Distillation as in Hofstätter et al., "Improving Efficient Neural
    Ranking Models with Cross-Architecture Knowledge Distillation" (2020); soft labels
    from an ensemble of cheaper rankers instead of a cross-encoder."""
    from ..rerankers.maxsim import ZeroShotMaxSim
    from .teachers import ensemble_logits

    maxsim = ZeroShotMaxSim(cfg.base, device=cfg.device)

    def logits(group, texts: list[str]) -> np.ndarray:
        return ensemble_logits(np.asarray(maxsim.score(group.query, texts)), group, cfg.teacher_scale, cfg.label_bonus)

    return logits


def train_colbert(cfg: ColBERTTrainConfig) -> Path:
    """Run the recipe; returns the folder of the saved checkpoint (``cfg.output``)."""
    ColBERTConfig, _ = import_colbert()
    from colbert.infra import Run, RunConfig
    from colbert.modeling.colbert import ColBERT
    from colbert.training.training import train

    started = time.time()
    examples, queries, collection, stats = training_examples(cfg)
    needed = cfg.steps * cfg.batch_size
    if len(examples) < needed:  # colbert-ai reads each example once: repeat for more steps
        examples = (examples * (needed // len(examples) + 1))[:needed]
    # label-free datasets record None: no judged query was read
    trained = {name: ids for name in stats if (ids := stats[name].pop("trained_query_ids")) is not None}
    counts = {name: {k: v for k, v in d.items() if k != "tuning"} for name, d in stats.items()}
    print(f"[colbert-train] {len(examples)} examples, {len(collection)} passages, {counts}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="colbert-train-"))
    try:
        init = build_initial_checkpoint(cfg, work / "init", random.Random(cfg.seed).sample(collection, min(
            cfg.pca_docs, len(collection))))
        config = ColBERTConfig(checkpoint=str(init), dim=cfg.dim, doc_maxlen=cfg.doc_maxlen,
                               query_maxlen=cfg.query_maxlen, bsize=cfg.batch_size, accumsteps=1, lr=cfg.lr,
                               maxsteps=cfg.steps, warmup=cfg.warmup, nway=cfg.nway,
                               use_ib_negatives=cfg.in_batch_negatives, amp=False, rank=0, nranks=1, gpus=0)
        from ..components.encoder import resolve_bf16
        from ..components.models import pick_device

        device = pick_device(cfg.device)
        autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=resolve_bf16(cfg.bf16, device, training=True))
        print(f"[colbert-train] on {device}", flush=True)
        with Run().context(RunConfig(root=str(work), experiment="colbert", name="run", nranks=1, gpus=0)), \
                single_process(), colbert_device(device), frozen_lower_layers(cfg.train_layers), \
                query_augmentation(cfg.query_augmentation), autocast:
            checkpoint = train(config, examples, queries, collection)
        model = ColBERT(name=checkpoint, colbert_config=ColBERTConfig.load_from_checkpoint(checkpoint))
        model.colbert_config.configure(doc_maxlen=cfg.infer_doc_maxlen)
        if cfg.fp16_weights:
            model.model.half()
        out = Path(cfg.output)
        with atomic_dir(out, replace=True) as staging:
            model.save(str(staging))
            meta = {"recipe": asdict(cfg), "data": stats, "examples": len(examples), "device": device,
                    "seconds": round(time.time() - started, 1), "torch": torch.__version__}
            (staging / "rerank_lab_training.json").write_text(json.dumps(meta, indent=2, default=str))
            records = recipe_provenance(trained, {n: d["tuning"] for n, d in stats.items()})
            if cfg.supervision != "labels":  # what it read instead: the corpora, no judgment
                records = [TrainingData(n, "corpus", "train", labels=False) for n in stats] + records
            write_provenance(staging, records)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"[colbert-train] saved {out} in {time.time() - started:.0f}s", flush=True)
    return out


def check_device(parser: argparse.ArgumentParser, device: str) -> None:
    """A ``--device`` that is not here ends the command with one line (exit 2), before any work."""
    from ..components.models import DeviceUnavailable, pick_device

    try:
        pick_device(device)
    except DeviceUnavailable as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the lab ColBERT (MiniLM + projection) on BEIR train splits.")
    defaults = ColBERTTrainConfig()
    parser.add_argument("--output", default=defaults.output)
    parser.add_argument("--datasets", nargs="+", default=list(defaults.datasets))
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--nway", type=int, default=defaults.nway)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--dim", type=int, default=defaults.dim)
    parser.add_argument("--doc-maxlen", type=int, default=defaults.doc_maxlen)
    parser.add_argument("--train-layers", type=int, default=defaults.train_layers)
    parser.add_argument("--init", choices=["pca", "identity"], default=defaults.init)
    parser.add_argument("--teacher", choices=["none", "ensemble"], default=defaults.teacher)
    parser.add_argument("--retriever", choices=["bm25", "hybrid"], default=defaults.retriever)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--supervision", choices=["labels", *LABEL_FREE], default=defaults.supervision,
                        help="labels: judged train queries; title / ict: pseudo-queries from the corpus, no judgment")
    parser.add_argument("--pseudo-queries", type=int, default=defaults.pseudo_queries,
                        help="label-free: documents per dataset asked for a pseudo-query")
    parser.add_argument("--query-augmentation", action="store_true",
                        help="pad queries with [MASK] tokens as colbert-ai does (off by default: see query_augmentation)")
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--device", default="auto", help="auto (the GPU when there is one), cpu, cuda, cuda:N")
    parser.add_argument("--tune-only", action="store_true", help="only tune an existing --output")
    parser.add_argument("--tune", action="store_true", help="tune depth and alpha after training (rerank_lab.train.tune)")
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    from .tune import tune_lab_colbert

    if args.tune_only:
        tune_lab_colbert(args.output)
        return
    split = "test" if args.datasets == ["toy"] else "train"  # the toy set has only a test split
    train_colbert(ColBERTTrainConfig(output=args.output, datasets=tuple(args.datasets), steps=args.steps,
                                     batch_size=args.batch_size, nway=args.nway, lr=args.lr, dim=args.dim,
                                     doc_maxlen=args.doc_maxlen, train_layers=args.train_layers, bf16=False if args.no_bf16 else None, split=split,
                                     init=args.init, teacher=args.teacher, retriever=args.retriever,
                                     warmup=args.warmup, query_augmentation=args.query_augmentation,
                                     supervision=args.supervision, pseudo_queries=args.pseudo_queries,
                                     device=args.device, allow_test=split == "test" and args.datasets == ["toy"]))
    if args.tune and split == "train":
        tune_lab_colbert(args.output)
    if split == "train":
        from .card import probe_model, write_card

        print(json.dumps({"memorisation_probe": probe_model(args.output)}))  # the training report's last line
        print(f"model card: {write_card(args.output)}")


if __name__ == "__main__":
    main()
