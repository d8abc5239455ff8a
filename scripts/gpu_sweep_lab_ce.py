"""Train lab cross-encoder candidates on a lent GPU and keep the one the tuning queries prefer.

The GPU machine has torch and transformers but not the corpora, the first stages or their
dependencies, so the groups and the tuning queries' first-stage candidates travel as bundles
written here by ``python -m rerank_lab.train.cross_encoder --prepare`` (see the README's
"Training on a lent GPU"). Each candidate runs the package's own training loop
(:func:`~rerank_lab.train.cross_encoder.train_cross_encoder`); candidates are compared by the
mean nDCG@10 over the tuning splits (SciFact held-out *train* queries, NFCorpus *dev*) of the
best interpolation with the first stage, never on test. The winner's weights come back in
chunks of at most 15 MB (the device tool's file limit); ``--join`` puts them back together.

Usage::

    python scripts/gpu_sweep_lab_ce.py --bundles .gpu --model .gpu/minilm --out $OUT --budget-minutes 7
    python scripts/gpu_sweep_lab_ce.py --join /work/.device/.../out --into rerank_lab/weights/lab-ce
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rerank_lab.evaluate import evaluate  # noqa: E402
from rerank_lab.run import Run  # noqa: E402
from rerank_lab.train.cross_encoder import (TrainConfig, interpolate_runs, load_training_data,  # noqa: E402
                                            new_model, score_pairs, train_cross_encoder)

CHUNK = 15_000_000
ALPHAS = np.round(np.arange(0, 1.0001, 0.05), 2)

# Candidates in priority order: (name, bundle, overrides). Bundles: "a" = the CPU recipe's
# mining (1 positive per query, 7 negatives from hybrid ranks 4..50); "b" = 3 positives per
# query, 15 negatives from ranks 4..100.
CANDIDATES = [
    ("a-ensemble", "a", dict(teacher="ensemble", epochs=5)),
    ("b-ensemble", "b", dict(teacher="ensemble", epochs=3, groups_per_step=8, n_negatives=15,
                             positives_per_query=3, depth=100)),
    ("a-labels-only", "a", dict(teacher="none", epochs=5)),
    ("a-ensemble-lr2e-5", "a", dict(teacher="ensemble", epochs=20, lr=2e-5)),
    ("b-labels-only", "b", dict(teacher="none", epochs=3, groups_per_step=8, n_negatives=15,
                                positives_per_query=3, depth=100)),
]


def heldout(model, tokenizer, sets: dict, max_length: int, depths=(20, 50)) -> dict:
    """nDCG@10 per (depth, alpha) and dataset of ``alpha*z(CE) + (1-alpha)*z(first stage)``."""
    table: dict = {}
    for name, s in sets.items():
        first = Run({q: [(d, float(x)) for d, x in r] for q, r in s["run"].items()}, name="first")
        pairs, keys = [], []
        for q in first.rankings:
            for d in first.doc_ids(q, max(depths)):
                pairs.append((s["queries"][q], s["texts"][d]))
                keys.append((q, d))
        scores = score_pairs(model, tokenizer, pairs, max_length)
        by_query: dict = {}
        for (q, d), x in zip(keys, scores):
            by_query.setdefault(q, {})[d] = float(x)
        ce = Run.from_scores(by_query, name="ce")
        for depth in depths:
            for a in ALPHAS:
                mixed = interpolate_runs(first, ce, float(a), depth)
                table.setdefault(f"{depth}/{a}", {})[name] = evaluate(mixed, s["qrels"], ["ndcg@10"])["ndcg@10"]
    means = {k: float(np.mean(list(v.values()))) for k, v in table.items()}
    best = max(means, key=means.get)
    return {"best": best, "best_mean": round(means[best], 4),
            "pure_ce_depth50": {n: round(v, 4) for n, v in table["50/1.0"].items()},
            "first_stage": {n: round(v, 4) for n, v in table["50/0.0"].items()},
            "best_by_dataset": {n: round(v, 4) for n, v in table[best].items()},
            "table": {k: {n: round(x, 4) for n, x in v.items()} for k, v in table.items()}}


def sweep(bundles: Path, model: str, out: Path, budget_minutes: float, max_length: int,
          only: list[str] | None = None, max_steps: int | None = None) -> None:
    import torch

    start = time.perf_counter()
    data = {key: bundles / f"data-{key}.json.gz" for key in ("a", "b")}
    loaded = {key: load_training_data(path) for key, path in data.items() if path.exists()}
    sets = next(iter(loaded.values()))[3]
    results, best = [], None
    per_candidate = None
    for name, key, overrides in CANDIDATES:
        if key not in loaded or (only and name not in only):
            continue
        elapsed = (time.perf_counter() - start) / 60
        if per_candidate is not None and elapsed + per_candidate > budget_minutes:
            print(f"budget: skipping {name} ({elapsed:.1f} min spent)")
            continue
        overrides = dict(overrides)
        epochs = overrides.pop("epochs")
        settings = {"groups_per_step": 16, "max_minutes": 3.0, **overrides}
        config = replace(TrainConfig(), output=str(Path("/tmp/sweep") / name), model=model, max_length=max_length,
                         checkpoint_every=10**9, **settings)
        config = replace(config, max_steps=max_steps or max(1, epochs * len(loaded[key][0]) // config.groups_per_step))
        t0 = time.perf_counter()
        trained = train_cross_encoder(config, progress=False, data=data[key])
        net, tokenizer = new_model(config.output, 0)
        net.to(config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
        scores = heldout(net, tokenizer, sets, max_length)
        minutes = (time.perf_counter() - t0) / 60
        per_candidate = max(per_candidate or 0, minutes)
        row = {"name": name, "steps": trained.steps, "planned_steps": config.max_steps, "pairs": trained.pairs,
               "minutes": round(minutes, 2), "final_loss": round(float(np.mean(trained.curve[-50:])), 4), **scores}
        print(json.dumps({k: v for k, v in row.items() if k != "table"}), flush=True)
        results.append(row)
        if best is None or row["best_mean"] > best["best_mean"]:
            best = row
        write_chosen(out, results, best)
    if best is None:
        raise SystemExit("no candidate trained")
    print(f"chosen {best['name']}: held-out mean nDCG@10 {best['best_mean']} at {best['best']}")


def write_chosen(out: Path, results: list[dict], best: dict) -> None:
    """The sweep so far and the current winner, written after every candidate: a run cut off
    by the machine's time limit still returns its best model."""
    (out / "sweep.json").write_text(json.dumps({"candidates": results, "chosen": best["name"]}, indent=1))
    folder = Path("/tmp/sweep") / best["name"]
    for old in out.glob("model.safetensors.part*"):
        old.unlink()
    blob = (folder / "model.safetensors").read_bytes()
    for i in range(0, len(blob), CHUNK):
        (out / f"model.safetensors.part{i // CHUNK}").write_bytes(blob[i:i + CHUNK])
    for f in ("training.json", "config.json"):
        shutil.copy(folder / f, out / f)


def join(parts: Path, into: Path, tokenizer_from: Path) -> None:
    """Rebuild a model folder from the chunks of :func:`sweep` plus the body's tokenizer files."""
    into.mkdir(parents=True, exist_ok=True)
    chunks = sorted(parts.glob("model.safetensors.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    (into / "model.safetensors").write_bytes(b"".join(p.read_bytes() for p in chunks))
    for f in ("training.json", "config.json"):
        shutil.copy(parts / f, into / f)
    for f in ("special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(tokenizer_from / f, into / f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=Path, default=Path(".gpu"))
    parser.add_argument("--model", default=".gpu/minilm")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--budget-minutes", type=float, default=7.0)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--only", nargs="+", help="candidate names to run (default: all, in order)")
    parser.add_argument("--max-steps", type=int, help="cap every candidate's steps (smoke runs)")
    parser.add_argument("--join", type=Path, help="folder of returned chunks to join instead of training")
    parser.add_argument("--into", type=Path)
    parser.add_argument("--tokenizer-from", type=Path, default=Path(".gpu/minilm"))
    args = parser.parse_args()
    if args.join:
        join(args.join, args.into, args.tokenizer_from)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        sweep(args.bundles, args.model, args.out, args.budget_minutes, args.max_length, args.only, args.max_steps)


if __name__ == "__main__":
    main()
