"""Fine-tune a cross-encoder on BEIR *train* splits with first-stage hard negatives.

Recipe (the lab cross-encoder, ``rerank_lab/weights/lab-ce``):

* body: any HF encoder (offline default: the all-MiniLM-L6-v2 body) + a 1-logit head;
* groups of 1 judged positive + ``n_negatives`` hard negatives from the hybrid (BM25+dense
  RRF) ranks ``skip_top+1..depth`` of SciFact-train and NFCorpus-train (never test);
* loss: listwise softmax cross-entropy over the group (Nogueira & Cho 2019 use pointwise
  BCE, also available: ``loss="bce"``) plus a KL term that distils a teacher's group
  distribution into the student (Hofstätter et al., "Improving Efficient Neural Ranking
  Models with Cross-Architecture Knowledge Distillation", 2020). The default teacher is the
  ensemble of :mod:`rerank_lab.train.teachers` (as in the ColBERT recipe): z-scored MaxSim over
  the frozen body's token embeddings (Khattab & Zaharia, SIGIR 2020) + the hybrid's reciprocal
  rank + a bonus for the judged positive. A MaxSim-only teacher (``teacher="maxsim"``) gives a
  cross-encoder whose interpolation with hybrid does not lift SciFact test (0.7147 vs 0.7149);
* SciFact has no dev split: 100 train queries are held out for tuning, and training also
  drops every train query that cites a document the held-out queries cite
  (:func:`~rerank_lab.train.negatives.split_queries`), so tuning does not reward memorised documents;
* learning rate with linear warmup/decay, bf16 autocast, seeded, periodic atomic checkpoints,
  resume after interruption, a time budget (``max_minutes``); on the GPU when there is one
  (``device="auto"``). The committed weights ran 998 steps of 16 groups x 8 pairs at max length
  256 on an NVIDIA H100 in 2.6 minutes (``training.json``); the CPU default is 1,000 steps of 4
  groups at max length 128 within a 42-minute budget;
* ``--prepare`` writes the mined groups, their texts and the tuning queries' candidates to one
  file and ``--data`` trains from it, so training runs where the corpora and first stages are
  not installed (a GPU machine: docs/training.md);
* afterwards the one tuner (:mod:`rerank_lab.train.tune`) picks the document handling
  (truncation or passages), the rerank depth and ``alpha`` for
  ``alpha * z(CE) + (1 - alpha) * z(first stage)`` on held-out *train* queries (SciFact) and
  the NFCorpus *dev* split, cost-aware, and stores it next to the weights (``tuning.json``).

Usage::

    python -m rerank_lab.train.cross_encoder                # CPU recipe -> rerank_lab/weights/lab-ce
    python -m rerank_lab.train.cross_encoder --max-steps 2 --datasets toy --output /tmp/ce
    python -m rerank_lab.train.cross_encoder --prepare data.json.gz      # groups for another machine
    python -m rerank_lab.train.cross_encoder --data data.json.gz --max-length 256 --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..components.lab_weights import LAB_CE_DIR, TRAIN_CE_COMMAND
from ..components.models import MINILM, pick_device, resolve_model
from ..components.stores import cache_dir
from ..components.provenance import write_provenance
from ..core.files import atomic_dir, atomic_path, stable_hash
from ..core.provenance import TrainingData
from .negatives import Group, mine_groups, negatives_retriever, split_queries, train_split
from .provenance import recipe_provenance

SUPERVISION = ("labels", "title", "ict", "llm")
#: the settings that decide which groups are mined (a --prepare bundle must match them)
MINING_SETTINGS = ("datasets", "retriever", "n_negatives", "positives_per_query", "depth", "skip_top", "holdout_queries",
                   "max_queries_per_dataset", "seed", "supervision", "pseudo_queries", "roundtrip_k", "llm_filter",
                   "cross_query_negatives")
from .teachers import make_teacher


@dataclass
class TrainConfig:
    output: str = str(LAB_CE_DIR)
    model: str = MINILM
    datasets: tuple[str, ...] = ("scifact", "nfcorpus")
    retriever: str = "hybrid"            # first stage for hard negatives: "hybrid" or "bm25"
    # "labels": the train judgments; "title" / "ict" / "llm": pseudo-queries from the corpus, no judgment read
    supervision: str = "labels"
    pseudo_queries: int = 2000           # label-free: documents asked for a query, per dataset
    roundtrip_k: int = 20                # label-free: keep a pseudo-query only if hybrid's top k holds its source
    llm_filter: bool = False             # label-free: and only if the pointwise LLM says the source answers it
    cross_query_negatives: int = 0       # of the n_negatives, how many are positives of other queries
    loss: str = "listwise"               # "listwise" (softmax CE, 1 pos + n neg), "bce", or "none" (distil only)
    n_negatives: int = 7
    positives_per_query: int = 1         # groups per query: one per sampled judged positive
    depth: int = 50
    skip_top: int = 3                    # skip the first ranks: likely unjudged positives
    teacher: str = "ensemble"            # "ensemble" (MaxSim + first-stage RRF + label), "maxsim", "dense", "none"
    distill_weight: float = 1.0
    teacher_scale: float = 2.0           # teacher logits = scale * z-score within the group
    label_bonus: float = 2.0             # "ensemble": added to the judged positive's teacher logit
    max_length: int = 128                # 128 keeps the recipe inside a shared-CPU budget
    lr: float = 5e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    groups_per_step: int = 4
    max_steps: int = 1000
    max_minutes: float | None = 42.0     # stop (and export) when the CPU budget is spent
    holdout_queries: int = 100           # train queries kept for tuning where no dev split exists
    max_queries_per_dataset: int | None = None
    checkpoint_every: int = 25
    seed: int = 0
    # None: bf16 autocast on a GPU or an AMX CPU only (resolve_bf16: elsewhere fp32 trains faster)
    bf16: bool | None = None
    export_fp16: bool = True
    device: str = "auto"                 # "auto": the GPU when there is one, else the CPU

    def key(self) -> str:
        d = asdict(self)
        for volatile in ("output", "max_minutes", "checkpoint_every", "max_steps", "device"):
            d.pop(volatile)
        return stable_hash(d)


@dataclass
class TrainResult:
    output: str
    steps: int
    pairs: int
    minutes: float
    curve: list[float] = field(default_factory=list)


# -- data --------------------------------------------------------------------------------
def build_groups(config: TrainConfig) -> tuple[list[Group], dict[str, dict], dict, list[TrainingData]]:
    """Training groups of all datasets (shuffled), their texts, the tuning split per dataset and
    what they were built from (provenance)."""
    from ..data import load_dataset
    from .pseudo import label_free_groups

    if config.supervision not in SUPERVISION:
        raise ValueError(f"unknown supervision {config.supervision!r}: use one of {', '.join(SUPERVISION)}")
    groups: list[Group] = []
    texts: dict[str, dict] = {}
    tuning: dict = {}
    trained: dict[str, list[str]] = {}
    for name in config.datasets:
        dataset = load_dataset(name, split=train_split(name))
        train_ids, tune_ids, tune_split = split_queries(name, config.holdout_queries, config.seed)
        tuning[name] = {"split": tune_split, "query_ids": tune_ids}
        retriever = negatives_retriever("bm25" if name == "toy" else config.retriever)
        if config.supervision != "labels":
            found, texts[name] = label_free_groups(dataset, retriever, config.supervision, config.pseudo_queries,
                                                   config.roundtrip_k, config.llm_filter, config.n_negatives,
                                                   config.depth, config.skip_top, config.seed)
            groups.extend(found)
            continue
        if config.max_queries_per_dataset:
            train_ids = sorted(random.Random(config.seed).sample(train_ids, min(len(train_ids),
                                                                            config.max_queries_per_dataset)))
        found = mine_groups(dataset, retriever, config.n_negatives, config.depth,
                            0 if name == "toy" else config.skip_top, config.positives_per_query, seed=config.seed,
                            query_ids=train_ids, allow_test=name == "toy", cross_query=config.cross_query_negatives)
        groups.extend(found)
        texts[name] = {d: doc.full_text for d, doc in dataset.corpus.items()}
        trained[name] = sorted({g.query_id for g in found})
    random.Random(config.seed).shuffle(groups)
    if not groups:
        raise ValueError(f"no training groups from {config.datasets}: do their train qrels judge retrievable docs?")
    # The tuning queries are recorded by the tuner when it reads them (train.tune.write_tuning), not here.
    if config.supervision == "labels":
        records = recipe_provenance(trained)
    else:  # the corpus alone: no judgment read, so no test query is contaminated by training
        records = [TrainingData(name, "corpus", "train", labels=False) for name in config.datasets]
    return groups, texts, tuning, records


def tuning_sets(tuning: dict, first_stage: str = "hybrid", depth: int = 100) -> dict:
    """For each tuning split: its queries, qrels and the first stage's top ``depth``, as plain
    JSON-able values (what the GPU sweep evaluates candidates on, ready to travel with a bundle)."""
    from ..data import load_dataset

    sets = {}
    for name, info in tuning.items():
        if not info["query_ids"]:
            continue
        dataset = load_dataset(name, split=info["split"]).restrict(info["query_ids"])
        run = (negatives_retriever(first_stage) % depth)(dataset)
        sets[name] = {"split": info["split"], "queries": {q: dataset.queries[q].text for q in dataset.queries},
                      "qrels": {q: dict(r) for q, r in dataset.qrels.items()},
                      "run": {q: [[d, float(x)] for d, x in r] for q, r in run.rankings.items()},
                      "texts": {d: dataset.corpus[d].full_text for r in run.rankings.values() for d, _ in r}}
    return sets


def save_training_data(config: TrainConfig, path: str | os.PathLike, with_tuning_sets: bool = True) -> Path:
    """Mine the groups of ``config`` once (first stage, hard negatives) and write them, with the
    texts they use and the tuning queries' first-stage candidates, to one gzipped JSON file:
    training can then run where the corpora, the first stage and their dependencies are not
    installed (a GPU machine). Usage: ``--prepare data.json.gz`` then ``--data data.json.gz``."""
    import gzip

    groups, texts, tuning, records = build_groups(config)
    used = {(g.dataset, d) for g in groups for d in [g.positive, *g.negatives]}
    bundle = {"mining": {k: getattr(config, k) for k in MINING_SETTINGS},
              "groups": [asdict(g) for g in groups],
              "texts": {name: {d: t for d, t in docs.items() if (name, d) in used} for name, docs in texts.items()},
              "tuning": tuning,
              "provenance": [r.as_dict() for r in records],
              "tuning_sets": tuning_sets(tuning) if with_tuning_sets else {}}
    path = Path(path)
    with atomic_path(path, suffix=".gz") as tmp:
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            json.dump(bundle, f)
    return path


def load_training_data(path: str | os.PathLike, config: TrainConfig | None = None):
    """(groups, texts, tuning, tuning sets, provenance) of a :func:`save_training_data` bundle;
    checks that ``config`` asks for the groups the bundle was mined with."""
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as f:
        bundle = json.load(f)
    if config is not None:
        wanted = {k: getattr(config, k) for k in bundle["mining"]}
        wanted["datasets"] = list(wanted["datasets"])
        if wanted != bundle["mining"]:
            raise ValueError(f"training data {path} was mined with {bundle['mining']}, but the config asks for "
                             f"{wanted}: prepare it again with --prepare, or match the config")
    groups = [Group(**g) for g in bundle["groups"]]
    if "provenance" not in bundle:
        raise ValueError(f"training data {path} records no provenance (made by an older --prepare): prepare it again")
    provenance = [TrainingData.coerce(r) for r in bundle["provenance"]]
    return groups, bundle["texts"], bundle["tuning"], bundle.get("tuning_sets", {}), provenance


# -- training ----------------------------------------------------------------------------
def memoized(teacher):
    """A group's teacher logits never change: compute them once per group, not once per epoch."""
    memo: dict = {}

    def cached(group: Group, texts: Sequence[str]) -> np.ndarray:
        key = (group.dataset, group.query_id, group.positive, tuple(group.negatives))
        if key not in memo:
            memo[key] = teacher(group, texts)
        return memo[key]

    return cached


def new_model(model: str, seed: int):
    """A 1-logit sequence-classification model on ``model``'s body; the head is seeded."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model(model)
    torch.manual_seed(seed)
    net = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    return net, AutoTokenizer.from_pretrained(path)


def group_loss(logits, teacher_logits, config: TrainConfig):
    """``logits``: (groups, 1 + n) student scores, positive first."""
    import torch
    import torch.nn.functional as F

    if config.loss == "none":  # the teacher alone decides (a label-free distillation)
        if teacher_logits is None or config.distill_weight <= 0:
            raise ValueError("loss='none' trains on the teacher alone: give a teacher and distill_weight > 0")
        loss = logits.new_zeros(())
    elif config.loss == "listwise":
        target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
        loss = F.cross_entropy(logits, target)
    elif config.loss == "bce":
        labels = torch.zeros_like(logits)
        labels[:, 0] = 1.0
        loss = F.binary_cross_entropy_with_logits(logits, labels)
    else:
        raise ValueError(f"unknown loss {config.loss!r}: use 'listwise', 'bce' or 'none'")
    if teacher_logits is not None and config.distill_weight > 0:
        loss = loss + config.distill_weight * F.kl_div(F.log_softmax(logits, dim=1), F.softmax(teacher_logits, dim=1),
                                                       reduction="batchmean")
    return loss


def batch_loss(model, tokenizer, batch: Sequence[Group], texts: dict[str, dict], teacher, config: TrainConfig):
    """(loss, pairs, pairs at max length) of one step's groups."""
    import torch

    queries, docs, teacher_scores = [], [], []
    for g in batch:
        ids = [g.positive, *g.negatives]
        group_docs = [texts[g.dataset][d] for d in ids]
        queries += [g.query] * len(ids)
        docs += group_docs
        if teacher is not None:
            teacher_scores.append(teacher(g, group_docs))
    # truncated as the reranker scores (and sentence-transformers): a query past max_length, such as an
    # inverse-cloze sentence, is cut too instead of stopping the run
    enc = tokenizer(queries, docs, truncation="longest_first", max_length=config.max_length, padding=True,
                    return_tensors="pt")
    long = int((enc["attention_mask"].sum(dim=1) >= config.max_length).sum())
    from ..components.encoder import resolve_bf16

    device = next(model.parameters()).device
    bf16 = resolve_bf16(config.bf16, device.type, training=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(**enc.to(device)).logits.float().view(len(batch), -1)
    t = (torch.tensor(np.asarray(teacher_scores), dtype=torch.float32, device=device)
         if teacher is not None else None)
    return group_loss(logits, t, config), len(queries), long


class UnsafeCheckpoint(ValueError):
    """A training checkpoint that holds more than tensors and plain values (pickled code)."""


def load_checkpoint(path: str | os.PathLike, device=None) -> dict:
    """A training checkpoint (tensors, numbers, strings, lists and dicts only), loaded with
    ``torch.load(weights_only=True)``: the cache folder may be shared, and unpickling anything else
    could run code written by whoever wrote there. Anything else is refused in one line."""
    import pickle

    import torch

    try:
        return torch.load(path, weights_only=True, map_location=device)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line or "global" in line),
                      str(exc).splitlines()[0] if str(exc) else "not a weights-only checkpoint")
        raise UnsafeCheckpoint(f"refusing to load the training checkpoint {path}: it holds pickled objects, not "
                               f"only tensors ({detail}); delete it to train from the start") from None


def train_cross_encoder(config: TrainConfig, progress: bool = True, data: str | os.PathLike | None = None
                        ) -> TrainResult:
    """Run (or resume) the recipe; export the model to ``config.output``. Returns the curve.
    ``data``: a :func:`save_training_data` bundle to train from instead of mining groups here."""
    import torch
    from ..core.progress import progress_bar
    from transformers import get_linear_schedule_with_warmup

    random.seed(config.seed)
    np.random.seed(config.seed)
    if data is not None:
        groups, texts, tuning, _, trained_on = load_training_data(data, config)
    else:
        groups, texts, tuning, trained_on = build_groups(config)
    import torch as _torch
    device = _torch.device(pick_device(config.device))
    model, tokenizer = new_model(config.model, config.seed)
    model.to(device)
    teacher = memoized(make_teacher(config.teacher, config.model, config.teacher_scale, config.label_bonus,
                                    config.max_length, str(device))) \
        if config.distill_weight > 0 and config.teacher != "none" else None
    decay = [p for n, p in model.named_parameters() if not any(k in n for k in ("bias", "LayerNorm"))]
    rest = [p for n, p in model.named_parameters() if any(k in n for k in ("bias", "LayerNorm"))]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=config.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup * config.max_steps), config.max_steps)

    ckpt = cache_dir("train") / f"ce-{config.key()}.pt"
    step, curve, pairs, spent, truncated = 0, [], 0, 0.0, 0
    if ckpt.exists():
        state = load_checkpoint(ckpt, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, curve, pairs, spent, truncated = (state["step"], state["curve"], state["pairs"], state["minutes"],
                                                state.get("truncated", 0))
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it to the device
        print(f"resuming from {ckpt} at step {step}")

    def save_checkpoint():
        with atomic_path(ckpt, suffix=".pt") as tmp:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "step": step, "curve": curve, "pairs": pairs,
                        "minutes": spent + (time.perf_counter() - start) / 60, "truncated": truncated,
                        "torch_rng": torch.get_rng_state()}, tmp)

    model.train()
    start = time.perf_counter()
    bar = progress_bar(total=config.max_steps, initial=step, desc="training cross-encoder", disable=not progress)
    while step < config.max_steps:
        if config.max_minutes is not None and spent + (time.perf_counter() - start) / 60 >= config.max_minutes:
            print(f"CPU budget of {config.max_minutes} min reached at step {step}")
            break
        # Group order is a pure function of (seed, step): resuming replays nothing and skips nothing.
        batch = [groups[(step * config.groups_per_step + i) % len(groups)] for i in range(config.groups_per_step)]
        loss, n_pairs, n_long = batch_loss(model, tokenizer, batch, texts, teacher, config)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        pairs += n_pairs
        truncated += n_long
        curve.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(curve[-20:]):.3f}")
        if step % config.checkpoint_every == 0:
            save_checkpoint()
    bar.close()
    save_checkpoint()
    minutes = spent + (time.perf_counter() - start) / 60
    meta = {"config": asdict(config), "steps": step, "pairs": pairs, "minutes": round(minutes, 2),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "truncated_pairs": truncated, "curve": [round(x, 4) for x in curve], "tuning": tuning,
            "command": TRAIN_CE_COMMAND}
    export(model, tokenizer, Path(config.output), meta, fp16=config.export_fp16, trained_on=trained_on)
    return TrainResult(config.output, step, pairs, minutes, curve)


def export(model, tokenizer, output: Path, meta: dict, fp16: bool = True, trained_on: Sequence = ()) -> Path:
    """Write the model (fp16 safetensors by default), tokenizer, ``training.json`` and
    ``provenance.json`` (``trained_on``: what it learned from), replacing ``output`` as a whole
    only once everything is written."""
    import copy

    import torch

    with atomic_dir(output, replace=True) as staging:
        net = copy.deepcopy(model).eval()
        if fp16:
            net = net.to(torch.float16)
        net.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / "training.json").write_text(json.dumps(meta, indent=1))
        write_provenance(staging, trained_on)
    return output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = TrainConfig()
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, type=lambda s: s.lower() in {"1", "true", "yes"}, default=value)
        elif isinstance(value, tuple):
            parser.add_argument(flag, nargs="+", default=list(value))
        elif value is None or name == "max_queries_per_dataset":
            parser.add_argument(flag, type=float, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    parser.add_argument("--prepare", metavar="PATH", help="only mine the training groups and write them to PATH "
                        "(gzipped JSON) for --data elsewhere, e.g. on a GPU machine without the corpora")
    parser.add_argument("--data", metavar="PATH", help="train from groups written by --prepare")
    parser.add_argument("--no-tune", action="store_true", help="skip tuning after training")
    parser.add_argument("--tune-only", action="store_true", help="only tune existing weights (python -m rerank_lab.train.tune ce)")
    args = vars(parser.parse_args(argv))
    from .colbert import check_device

    check_device(parser, args["device"])
    no_tune, tune_only = args.pop("no_tune"), args.pop("tune_only")
    prepare, data = args.pop("prepare"), args.pop("data")
    args["datasets"] = tuple(args["datasets"])
    if args["max_queries_per_dataset"] is not None:
        args["max_queries_per_dataset"] = int(args["max_queries_per_dataset"])
    config = TrainConfig(**args)
    if prepare:
        print(f"wrote {save_training_data(config, prepare)}")
        return
    if not tune_only:
        result = train_cross_encoder(config, data=data)
        print(json.dumps({"output": result.output, "steps": result.steps, "pairs": result.pairs,
                          "minutes": round(result.minutes, 2), "final_loss": float(np.mean(result.curve[-50:]))}))
    if not no_tune:
        from .tune import tune_lab_cross_encoder

        print(json.dumps(tune_lab_cross_encoder(config.output)["chosen"], indent=1))
    from .card import probe_model, write_card

    print(json.dumps({"memorisation_probe": probe_model(config.output)}))  # the training report's last line
    print(f"model card: {write_card(config.output)}")


if __name__ == "__main__":
    main()
