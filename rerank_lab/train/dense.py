"""Label-free adaptation of the dense first stage to a new corpus, GPL-style.

GPL (Wang, Thakur, Reimers & Gurevych, "GPL: Generative Pseudo Labeling for Unsupervised Domain
Adaptation of Dense Retrieval", NAACL 2022): write pseudo-queries from the target corpus, mine a
hard negative for each with the dense model itself, and let a teacher's margin
``score(q, positive) - score(q, negative)`` be the regression target of the bi-encoder's own
margin (MarginMSE; Hofstätter et al., "Improving Efficient Neural Ranking Models with
Cross-Architecture Knowledge Distillation", 2020). No judgment is read anywhere, so every test
query of the target stays clean. GPL's teacher is an MS MARCO cross-encoder; none ships offline,
so the default teacher is zero-shot MaxSim over MiniLM's token vectors (the lab's ``"maxsim"``,
which holds no labels); online, ``teacher=`` takes a cross-encoder id or folder.

Pseudo-queries come from :mod:`rerank_lab.train.pseudo` (titles, inverse cloze, or the offline
LLM), round-trip filtered. The adapted model is saved as a sentence-transformers folder (what
:class:`~rerank_lab.first_stage.dense.Dense` loads, ``hybrid(dense_model=folder)`` fuses) with
``training.json`` and a label-free ``provenance.json``; the folder appears only once complete.

Usage::

    result = adapt_dense(load_dataset("scifact"), AdaptConfig(kind="title", steps=150), "runs/gpl-scifact")
    Dense("runs/gpl-scifact")(dataset)
    python -m rerank_lab.train.dense scifact --kind title --steps 150 --out runs/gpl-scifact --record gpl.json
"""
from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..components.models import MINILM, pick_device, resolve_model
from ..core.data import Dataset
from ..core.files import atomic_dir, atomic_write_text
from ..core.provenance import TrainingData
from .pseudo import KINDS, PseudoQuery, pseudo_groups, pseudo_queries, roundtrip

TeacherScore = Callable[[str, Sequence[str]], Sequence[float]]


@dataclass(frozen=True)
class AdaptConfig:
    """One adaptation run: ``queries`` pseudo-queries of ``kind`` (before the round-trip filter
    keeps those whose source dense brings back in its top ``roundtrip_k``), one hard negative each
    from dense's ranks ``skip_top+1..depth``, ``steps`` of ``batch_size`` triples."""

    kind: str = "title"
    queries: int = 1200
    roundtrip_k: int = 20
    depth: int = 50
    skip_top: int = 3
    teacher: str = "maxsim"         # "maxsim" (zero-shot, no labels) or a cross-encoder id / folder
    steps: int = 150
    batch_size: int = 16
    lr: float = 2e-5
    warmup: float = 0.1
    scale: float = 5.0              # the student's cosine margin times this meets the standardised teacher margin
    max_length: int = 256
    seed: int = 0
    model: str = MINILM
    device: str = "auto"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown pseudo-query kind {self.kind!r}: use one of {', '.join(KINDS)}")
        for name in ("queries", "steps", "batch_size", "roundtrip_k", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Triple:
    """A pseudo-query, its positive and its hard negative (texts), and the teacher's margin."""

    query: str
    positive: str
    negative: str
    margin: float


@dataclass(frozen=True)
class AdaptResult:
    output: str
    triples: int
    steps: int
    minutes: float
    curve: list


def teacher_scorer(name: str, device: str = "auto") -> TeacherScore:
    """``"maxsim"``: zero-shot MaxSim (Khattab & Zaharia, SIGIR 2020) over MiniLM's token vectors,
    divided by the query's word count so margins do not grow with query length; anything else: a
    cross-encoder id or folder scored raw (no interpolation), as GPL does."""
    if name == "maxsim":
        from ..rerankers.maxsim import ZeroShotMaxSim

        maxsim = ZeroShotMaxSim(MINILM, cache=False, device=device)
        return lambda query, documents: np.asarray(maxsim.score(query, list(documents)), np.float64) / max(
            1, len(query.split()))
    from ..rerankers.cross_encoder import cross_encoder

    model = cross_encoder(name, device=device)
    return lambda query, documents: np.asarray(model.score(query, list(documents)), np.float64)


def mine_triples(dataset: Dataset, config: AdaptConfig, progress: bool = True) -> tuple[list[Triple], dict]:
    """Pseudo-queries from ``dataset``'s corpus, round-trip filtered by the model being adapted,
    one dense hard negative each, and the teacher's margins (no qrels read)."""
    from ..core.progress import progress_bar
    from ..first_stage import Dense

    retriever = Dense(config.model, device=config.device)
    pseudo: list[PseudoQuery] = pseudo_queries(dataset, config.queries, config.kind, seed=config.seed,
                                               progress=progress)
    kept, stats = roundtrip(dataset, pseudo, retriever, config.roundtrip_k)
    groups, texts = pseudo_groups(dataset, kept, retriever, n_negatives=1, depth=config.depth,
                                  skip_top=config.skip_top, seed=config.seed)
    teacher = teacher_scorer(config.teacher, config.device)
    triples = []
    for group in progress_bar(groups, desc=f"teacher margins ({config.teacher})", disable=not progress):
        positive, negative = texts[group.positive], texts[group.negatives[0]]
        pos, neg = teacher(group.query, [positive, negative])
        triples.append(Triple(group.query, positive, negative, float(pos - neg)))
    margins = np.asarray([t.margin for t in triples])
    stats.update({"triples": len(triples), "teacher": config.teacher,
                  "teacher_margin_mean": round(float(margins.mean()), 4) if len(margins) else None,
                  "teacher_prefers_source": round(float((margins > 0).mean()), 4) if len(margins) else None})
    return triples, stats


def margin_mse(student_margin, teacher_margin):
    """MarginMSE (Hofstätter et al., 2020): mean squared difference of the two margins."""
    return ((student_margin - teacher_margin) ** 2).mean()


def train_triples(triples: Sequence[Triple], config: AdaptConfig, progress: bool = True):
    """Fine-tune the bi-encoder on ``triples``; returns (model, loss curve, minutes)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import get_linear_schedule_with_warmup

    from ..core.progress import progress_bar

    if not triples:
        raise ValueError("no training triples: every pseudo-query failed the round-trip filter; raise "
                         "--queries or --roundtrip-k, or try another --kind")
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    model = SentenceTransformer(resolve_model(config.model), device=device)
    model.max_seq_length = config.max_length
    spread = float(np.std([t.margin for t in triples])) or 1.0  # teacher margins in units of their spread
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup * config.steps), config.steps)
    order = list(range(len(triples)))
    random.Random(config.seed).shuffle(order)

    def embed(texts):
        prepare = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers 5.x renamed it
        features = {k: v.to(device) if hasattr(v, "to") else v for k, v in prepare(list(texts)).items()}
        return model(features)["sentence_embedding"]  # normalised: the saved pipeline ends in Normalize

    model.train()
    curve, start = [], time.perf_counter()
    bar = progress_bar(range(config.steps), desc="adapting dense (MarginMSE)", disable=not progress)
    for step in bar:
        batch = [triples[order[(step * config.batch_size + i) % len(order)]] for i in range(config.batch_size)]
        q, p, n = (embed(t.query for t in batch), embed(t.positive for t in batch), embed(t.negative for t in batch))
        student = config.scale * ((q * p).sum(-1) - (q * n).sum(-1))
        target = torch.tensor([t.margin / spread for t in batch], dtype=student.dtype, device=student.device)
        loss = margin_mse(student, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        curve.append(round(float(loss.detach()), 4))
        bar.set_postfix(loss=f"{np.mean(curve[-20:]):.3f}")
    return model.eval(), curve, (time.perf_counter() - start) / 60


def adapt_dense(dataset: Dataset, config: AdaptConfig, output: str | Path, progress: bool = True) -> AdaptResult:
    """Mine pseudo-query triples from ``dataset``'s corpus, train, and save the adapted model to
    ``output`` (replaced as a whole once written; an interrupt leaves the old folder or none)."""
    start = time.perf_counter()
    triples, stats = mine_triples(dataset, config, progress)
    model, curve, train_minutes = train_triples(triples, config, progress)
    minutes = (time.perf_counter() - start) / 60
    from ..analysis.manifest import machine
    from ..components.provenance import write_provenance

    meta = {"recipe": "GPL-style label-free dense adaptation (Wang et al., NAACL 2022)", "config": asdict(config),
            "dataset": dataset.name, "pseudo": stats, "steps": len(curve), "curve": curve,
            "minutes": {"train": round(train_minutes, 2), "total": round(minutes, 2)},
            "device": pick_device(config.device), "machine": machine(),
            "command": f"python -m rerank_lab.train.dense {dataset.name} --kind {config.kind} --steps {config.steps}"}
    with atomic_dir(output, replace=True) as staging:
        model.save(str(staging))
        (staging / "training.json").write_text(json.dumps(meta, indent=1))
        # the corpus's documents, no judgment: adds no positives to the contamination split
        write_provenance(staging, [TrainingData(dataset.name, "corpus", "train", labels=False)])
    return AdaptResult(str(output), len(triples), len(curve), minutes, curve)


def compare(dataset: Dataset, adapted: str | Path, device: str = "auto", original: str = MINILM) -> dict:
    """Dense and hybrid with the ``original`` and the ``adapted`` encoder on ``dataset`` (a tuning or
    test split): nDCG@10, Δ with its 95% interval and paired p, for each pair (Holm over the two)."""
    from ..analysis.evaluate import holm
    from ..analysis.experiment import Experiment
    from ..first_stage import Dense, hybrid

    rows = {}
    for family, before, after in (("dense", Dense(original, device=device), Dense(str(adapted), device=device)),
                                  ("hybrid", hybrid(original, device=device), hybrid(str(adapted), device=device))):
        table = {r["name"]: r for r in Experiment(dataset, {family: before, f"{family} (adapted)": after},
                                                  baseline=family, metrics=["ndcg@10"]).run().table()}
        row = table[f"{family} (adapted)"]
        rows[family] = {"original": round(table[family]["ndcg@10"], 4), "adapted": round(row["ndcg@10"], 4),
                        "delta": round(row["delta_ndcg@10"], 4), "ci95": row.get("ci95"), "p_raw": row.get("p_raw"),
                        "queries": row.get("queries")}
    # a pair with no difference at all has no p (None): it counts as 1 in the correction
    for family, p in zip(rows, holm([1.0 if rows[f]["p_raw"] is None else rows[f]["p_raw"] for f in rows])):
        rows[family]["p_holm"] = round(float(p), 4)
    return rows


def evaluation_split(name: str, split: str) -> Dataset:
    """``"tuning"``: the lab's tuning queries of ``name`` (SciFact: 100 held-out train queries,
    NFCorpus: dev), where settings may be chosen; any other name: that split as it is."""
    from ..data import load_dataset
    from .negatives import tuning_dataset

    return tuning_dataset(name) if split == "tuning" else load_dataset(name, split=split)


def summary(records: Sequence[dict]) -> str:
    """A markdown table of adaptation records (``--record`` files): per target and split, dense and
    hybrid with the original and the adapted encoder, Δ with its 95% interval, raw and Holm p (Holm
    over the two comparisons of that split)."""
    from ..analysis.significance import format_p

    def p_text(p):
        return "n/a" if p is None else format_p(p)

    lines = ["| target | split | queries | first stage | original | adapted | Δ [95% CI] | p | Holm p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for record in records:
        for split, rows in record["comparisons"].items():
            for family, row in rows.items():
                ci = row.get("ci95") or [float("nan")] * 2
                lines.append(f"| {record['dataset']} | {split} | {row['queries']} | {family} | {row['original']:.4f} | "
                             f"{row['adapted']:.4f} | {row['delta']:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}] | "
                             f"{p_text(row['p_raw'])} | {p_text(row['p_holm'])} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="?", help="the target corpus (its documents only are read), e.g. scifact")
    parser.add_argument("--report", metavar="FOLDER", help="print the table of the --record files in FOLDER and stop")
    defaults = AdaptConfig()
    for name, value in asdict(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    parser.add_argument("--out", help="folder for the adapted model (replaced when done)")
    parser.add_argument("--evaluate", nargs="*", default=["tuning", "test"],
                        help="splits to compare original and adapted on ('tuning': the lab's tuning queries; "
                             "none: skip)")
    parser.add_argument("--record", help="also write the run and the comparisons to this JSON file")
    args = vars(parser.parse_args(argv))
    report_folder = args.pop("report")
    if report_folder:
        print(summary([json.loads(p.read_text()) for p in sorted(Path(report_folder).glob("*.json"))]))
        return
    if not args["dataset"] or not args["out"]:
        parser.error("give the target DATASET and --out FOLDER (or --report FOLDER)")
    from ..data import load_dataset

    name, out, splits, record = args.pop("dataset"), args.pop("out"), args.pop("evaluate"), args.pop("record")
    config = AdaptConfig(**args)
    pick_device(config.device)  # an unavailable device fails now, in one line
    result = adapt_dense(load_dataset(name, split="test"), config, out)
    report = {"output": result.output, "triples": result.triples, "steps": result.steps,
              "minutes": round(result.minutes, 2), "final_loss": float(np.mean(result.curve[-20:])),
              "comparisons": {split: compare(evaluation_split(name, split), out, config.device, config.model)
                              for split in splits}}
    print(json.dumps(report, indent=1))
    if record:
        meta = json.loads((Path(out) / "training.json").read_text())
        atomic_write_text(Path(record), json.dumps({**meta, **report}, indent=1) + "\n")


if __name__ == "__main__":
    main()
