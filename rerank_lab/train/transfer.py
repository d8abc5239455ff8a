"""Which training recipe learns relevance rather than documents: the study behind the lab default.

Each recipe is a setting of the one training command (:mod:`rerank_lab.train.cross_encoder`).
It trains two models at the same budget, one per source dataset, and each model is measured where
memory cannot pass for relevance:

* **SciFact clean**: the SciFact-trained model on the SciFact test queries none of whose relevant
  documents it saw as a training positive (every test query, for a label-free recipe);
* **SciFact → NFCorpus** and **NFCorpus → SciFact**: each model on the other dataset's test split
  (leave one dataset out: every query is clean);
* the **memorisation probe** (:mod:`rerank_lab.analysis.memorisation`) on its source corpus.

Every model reranks hybrid's top :data:`DEPTH` mixed with hybrid at the ``alpha`` chosen on
**clean validation** only: SciFact train queries that training never read and none of whose
relevant documents were its training positives (never test, clean or not). Each model's record is
written as it finishes (``<folder>/<recipe>-<source>.json``), so the study resumes; the weights
stay in the cache folder (``$RERANK_LAB_CACHE/transfer``), out of the repository.

Usage::

    python -m rerank_lab.train.transfer --recipes labels cross-query title --steps 200
    python -m rerank_lab.train.transfer --report          # the table from the records written so far
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..analysis.evaluate import holm
from ..analysis.manifest import machine
from ..analysis.significance import Difference, from_row, queries_needed
from ..components.stores import cache_dir
from ..core.files import atomic_write_text
from .cross_encoder import TrainConfig
from .negatives import clean_validation

#: the recipes compared, as settings of the training command (on top of :data:`BUDGET`)
RECIPES: dict[str, dict] = {
    # judged positives, hybrid hard negatives, listwise loss + the ensemble teacher with a label bonus
    "labels": {},
    # the same, with 3 of the 7 negatives drawn from other queries' positives (no document prior to learn)
    "cross-query": {"cross_query_negatives": 3},
    # no judgment read: document titles as queries, bodies as positives, round-trip filtered
    "title": {"supervision": "title", "label_bonus": 0.0},
    # no judgment read: inverse cloze (a sentence as the query, the rest as the positive)
    "ict": {"supervision": "ict", "label_bonus": 0.0},
    # no judgment read: the offline LLM writes the queries, kept when hybrid brings the source back
    # and the pointwise LLM agrees the source answers them
    "llm": {"supervision": "llm", "label_bonus": 0.0, "pseudo_queries": 400, "llm_filter": True},
    # no label and no positive: the student learns the zero-shot teachers' ranking of title groups
    "teacher-only": {"supervision": "title", "loss": "none", "label_bonus": 0.0},
    # no model at all: BM25's and the dense model's scores fused into hybrid's top 20, weights tuned on the source
    "fusion": {"family": "fusion"},
    # the committed lab cross-encoder as a fourth fusion input, weights chosen on its clean validation
    # (it trained on both datasets: SciFact clean only, no leave-one-out column)
    "ce-fusion": {"family": "fusion", "inputs": "lab-ce"},
}
SOURCES = ("scifact", "nfcorpus")
#: the CPU budget every recipe trains at: 4 groups of 8 pairs per step at 128 tokens
BUDGET = {"max_length": 128, "groups_per_step": 4, "max_minutes": None, "checkpoint_every": 25}
DEPTH = 20
ALPHAS = tuple(round(a, 2) for a in np.arange(0.0, 1.0001, 0.1))
DEFAULT_FOLDER = Path("docs/records/transfer")
#: the lift the study looks for on clean queries (the goal of issue 33: at least +0.01 nDCG@10 at p < 0.05)
GOAL = 0.01


@dataclass
class ModelRecord:
    """One recipe trained on one source: what it cost, how it mixes, what it did."""

    recipe: str
    source: str
    settings: dict
    training: dict = field(default_factory=dict)
    alpha: float | None = None
    validation: dict = field(default_factory=dict)
    probe: dict = field(default_factory=dict)
    tests: dict = field(default_factory=dict)

    def path(self, folder: Path) -> Path:
        return folder / f"{self.recipe}-{self.source}.json"


def mixed(folder: str | Path, alpha: float, max_length: int, label: str):
    """The model as the study uses it: reranking hybrid's top :data:`DEPTH`, mixed at ``alpha``."""
    from ..core.interpolate import Interpolate
    from ..rerankers.cross_encoder import cross_encoder

    scorer = cross_encoder(str(folder), mode="fast", max_length=max_length, name=label)
    return Interpolate(scorer, alpha=alpha, rerank_depth=DEPTH, label=label)


def choose_alpha(folder: Path, records, max_length: int) -> tuple[float, dict]:
    """The alpha with the best mean nDCG@10 on clean validation (ties: nearer 0.5)."""
    from ..first_stage import hybrid
    from ..rerankers.cross_encoder import cross_encoder
    from .tune import TuningSet, tune

    val = clean_validation(records)
    sets = [TuningSet("scifact", "train", val, (hybrid() % 100)(val))]
    record = tune(lambda _: cross_encoder(str(folder), mode="fast", max_length=max_length, name="candidate"),
                  [{}], sets, depths=(DEPTH,), alphas=ALPHAS, tolerance=0.0, progress=True)
    curve = record["alpha_curves_of_chosen"]["scifact/train"]
    return float(record["chosen"]["alpha"]), {"queries": len(val.queries), "first_stage": curve["0.0"],
                                              "chosen": curve[str(record["chosen"]["alpha"])], "curve": curve,
                                              "query_ids": sorted(val.queries)}


def test_rows(folder: Path, alpha: float, max_length: int, label: str) -> dict:
    """The model against hybrid on both test splits, with the contamination split where it applies."""
    from ..analysis.experiment import Experiment
    from ..data import load_dataset
    from ..first_stage import hybrid

    out = {}
    for name in SOURCES:
        dataset = load_dataset(name, split="test")
        first = hybrid() % 100
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = Experiment(dataset, {"hybrid": first, label: first >> mixed(folder, alpha, max_length, label)},
                             metrics=("ndcg@10",), baseline="hybrid", progress=True).run()
        rows = {r["name"]: r for r in exp.table()}
        row = rows[label]
        out[name] = {"queries": row["queries"], "hybrid": rows["hybrid"]["ndcg@10"], "ndcg@10": row["ndcg@10"],
                     "delta": row["delta_ndcg@10"], "ci95": row["ci95"], "p": row["p_raw"],
                     "model_seconds_per_query": round(row["model_seconds"] / max(row["queries"], 1), 3),
                     **{k: row[k] for k in row if k.startswith(("clean_", "contaminated_"))}}
    return out


def run_fusion(source: str, folder: Path) -> ModelRecord:
    """Zero-shot score fusion tuned on the source's tuning split (SciFact's held-out train queries,
    NFCorpus dev: every one clean, since nothing is trained), then tested on both test splits."""
    from ..analysis.experiment import Experiment
    from ..components.provenance import training_data
    from ..data import load_dataset
    from ..first_stage import hybrid
    from ..rerankers.fusion import zero_shot_fusion
    from .negatives import tuning_queries
    from .tune import tune_fusion, tuning_sets

    ids, split = tuning_queries(source)
    sets = tuning_sets({source: {"split": split, "query_ids": ids}})
    t0 = time.perf_counter()
    chosen = tune_fusion(sets, depths=(DEPTH,))["chosen"]
    weights = tuple(chosen["settings"]["weights"])
    tuned_on = [training_data(source, split, "tune", ids)]
    record = ModelRecord("fusion", source, {"weights": list(weights), "rerank_depth": DEPTH},
                         {"minutes": round((time.perf_counter() - t0) / 60, 1), "device": "cpu",
                          "cpu": machine()["cpu"], "cores": machine()["cores"]})
    record.validation = {"queries": len(ids), "weights": list(weights)}
    for name in SOURCES:
        dataset = load_dataset(name, split="test")
        first = hybrid() % 100
        fuse = replace(zero_shot_fusion(weights=weights, rerank_depth=DEPTH), trained_on=tuple(tuned_on))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = Experiment(dataset, {"hybrid": first, "fusion": first >> fuse}, metrics=("ndcg@10",),
                             baseline="hybrid", progress=True).run()
        row = {r["name"]: r for r in exp.table()}["fusion"]
        record.tests[name] = {"queries": row["queries"], "ndcg@10": row["ndcg@10"], "delta": row["delta_ndcg@10"],
                              "ci95": row["ci95"], "p": row["p_raw"],
                              **{k: row[k] for k in row if k.startswith(("clean_", "contaminated_"))}}
    atomic_write_text(record.path(folder), json.dumps(asdict(record), indent=1) + "\n")
    return record


def run_ce_fusion(folder: Path) -> ModelRecord:
    """``"ce-fusion"``: the committed lab cross-encoder fused with hybrid's, BM25's and the dense
    model's scores, the weights chosen on its clean validation (:func:`~rerank_lab.train.tune.tune_lab_ce_fusion`),
    tested on SciFact's clean test queries; plus the cross-encoder's **share**: the same queries
    under the best fusion without it (its weight 0, chosen on the same validation), paired."""
    from ..analysis.evaluate import evaluate, paired_test
    from ..analysis.experiment import Experiment
    from ..components.lab_weights import LAB_CE_DIR, LAB_CE_FUSION_DIR
    from ..components.provenance import read_provenance
    from ..data import load_dataset
    from ..first_stage import hybrid
    from ..rerankers import load_reranker
    from ..rerankers.fusion import lab_ce_fusion, zero_shot_fusion
    from .tune import tune_lab_ce_fusion

    t0 = time.perf_counter()
    tuned = tune_lab_ce_fusion(write=False)
    weights = tuple(tuned["chosen"]["settings"]["weights"])
    without = tuple(tuned["best_without_ce"]["settings"]["weights"][:-1])
    committed = json.loads((LAB_CE_FUSION_DIR / "tuning.json").read_text())["chosen"]["settings"]["weights"]
    if list(weights) != committed:
        raise RuntimeError(f"{LAB_CE_FUSION_DIR}/tuning.json chose {committed}, this run {list(weights)}: "
                           f"re-tune it with `python -m rerank_lab.train.tune ce-fusion` first")
    lab_ce = json.loads((LAB_CE_DIR / "training.json").read_text())
    record = ModelRecord("ce-fusion", "scifact", {"weights": list(weights), "rerank_depth": DEPTH, "model": "lab-ce"},
                         {"minutes": round((time.perf_counter() - t0) / 60, 1), "device": "cpu",
                          "cpu": machine()["cpu"], "cores": machine()["cores"],
                          "model_minutes": lab_ce["minutes"], "model_device": lab_ce["device"]})
    val = clean_validation(read_provenance(LAB_CE_DIR))
    first = hybrid() % 100
    as_tuned = evaluate((first >> load_reranker("ce"))(val), val.qrels, ["ndcg@10"])["ndcg@10"]
    record.validation = {"queries": len(val.queries), "weights": list(weights), "mean": tuned["best"]["mean"],
                         "without_ce": {"weights": list(without), "mean": tuned["best_without_ce"]["mean"],
                                        "se_vs_best": tuned["best_without_ce"]["se_vs_best"]},
                         "ce_as_tuned": round(as_tuned, 4)}
    record.probe = json.loads((LAB_CE_DIR / "probe.json").read_text()).get("scifact", {})
    dataset = load_dataset("scifact", split="test")
    fuse = lab_ce_fusion(weights=weights, rerank_depth=DEPTH)
    plain = zero_shot_fusion(weights=without, rerank_depth=DEPTH, name="fusion-without-ce")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = Experiment(dataset, {"hybrid": first, "ce-fusion": first >> fuse, "fusion-without-ce": first >> plain},
                         metrics=("ndcg@10",), baseline="hybrid", progress=True).run()
    row = {r["name"]: r for r in exp.table()}["ce-fusion"]
    record.tests["scifact"] = {"queries": row["queries"], "ndcg@10": row["ndcg@10"], "delta": row["delta_ndcg@10"],
                               "ci95": row["ci95"], "p": row["p_raw"],
                               **{k: row[k] for k in row if k.startswith(("clean_", "contaminated_"))}}
    clean = exp.contamination()["ce-fusion"].clean
    share = paired_test(exp.results["fusion-without-ce"].restrict(clean), exp.results["ce-fusion"].restrict(clean),
                        "ndcg@10", exp.test)
    base = exp.results["hybrid"].restrict(clean)["ndcg@10"]
    record.tests["scifact"]["share"] = {
        "queries": share.queries, "without_ce_delta_vs_hybrid": round(share.mean_a - base, 4),
        "ce_share": round(share.delta, 4), "ci95": [round(share.ci_low, 4), round(share.ci_high, 4)],
        "p": round(share.p_value, 4), "test": share.method}
    atomic_write_text(record.path(folder), json.dumps(asdict(record), indent=1) + "\n")
    return record


def run_model(recipe: str, source: str, steps: int, folder: Path, device: str = "auto") -> ModelRecord:
    """Train (or reuse) one recipe on one source, choose its alpha, test it, probe it; write its record."""
    if recipe == "ce-fusion":
        return run_ce_fusion(folder) if source == "scifact" else None
    if RECIPES[recipe].get("family") == "fusion":
        return run_fusion(source, folder)
    from ..analysis.memorisation import memorisation_probe
    from ..components.provenance import add_provenance, read_provenance, training_data
    from ..core.provenance import TrainingData
    from .cross_encoder import train_cross_encoder

    config = TrainConfig(output=str(cache_dir("transfer") / f"{recipe}-{source}"), datasets=(source,),
                         max_steps=steps, device=device, **{**BUDGET, **RECIPES[recipe]})
    record = ModelRecord(recipe, source, {**BUDGET, **RECIPES[recipe], "max_steps": steps})
    if record.path(folder).exists():
        done = ModelRecord(**json.loads(record.path(folder).read_text()))
        if done.settings == record.settings and done.tests:
            return done
    model = Path(config.output)
    trained = model / "training.json"
    wall_minutes = None
    if not (trained.exists() and json.loads(trained.read_text())["config"] == json.loads(json.dumps(asdict(config)))):
        t0 = time.perf_counter()
        train_cross_encoder(config, progress=True)
        wall_minutes = round((time.perf_counter() - t0) / 60, 1)
    meta = json.loads(trained.read_text())
    # "minutes" is what training.json says, the same on a fresh run and a resumed one; a fresh run also keeps
    # its wall time, which counts building the supervision (the llm recipe's pseudo-queries: most of its cost)
    record.training = {"minutes": round(meta["minutes"], 2), "steps": meta["steps"], "pairs": meta["pairs"],
                       "final_loss": round(float(np.mean(meta["curve"][-25:])), 4), "device": meta["device"],
                       "cpu": machine()["cpu"], "cores": machine()["cores"]}
    if wall_minutes is not None:
        record.training["wall_minutes"] = wall_minutes
    records = read_provenance(model)
    record.alpha, record.validation = choose_alpha(model, records, config.max_length)
    # the choice read these validation judgments: the model's provenance says so, as the tuner's does
    add_provenance(model, [training_data("scifact", "train", "tune", record.validation["query_ids"])])
    scorer = mixed(model, 1.0, config.max_length, "probe").scorer
    labelled = any(r.labels and r.role == "train" for r in records)
    probe_for = None if labelled else [TrainingData(source, "train")]  # label-free: the split's positives
    record.probe = memorisation_probe(scorer, source, training=probe_for).as_dict()
    record.tests = test_rows(model, record.alpha, config.max_length, f"{recipe}-{source}")
    atomic_write_text(record.path(folder), json.dumps(asdict(record), indent=1) + "\n")
    return record


def summary(records: Sequence[ModelRecord]) -> str:
    """The study's table: one row per recipe; p-values Holm-corrected across the recipes within each column."""
    by = {(r.recipe, r.source): r for r in records}
    recipes = [name for name in RECIPES if any(key[0] == name for key in by)]
    cells: dict[str, dict[str, dict]] = {}
    for name in recipes:
        s, n = by.get((name, "scifact")), by.get((name, "nfcorpus"))
        cells[name] = {
            "SciFact clean": _cell(s.tests["scifact"], "clean") if s else None,
            "SciFact → NFCorpus": _cell(n_test(s, "nfcorpus")) if s else None,
            "NFCorpus → SciFact": _cell(n_test(n, "scifact")) if n else None,
        }
    columns = ["SciFact clean", "SciFact → NFCorpus", "NFCorpus → SciFact"]
    for column in columns:
        named = [r for r in recipes if cells[r][column] and cells[r][column]["p"] is not None]
        for r, adjusted in zip(named, holm([cells[r][column]["p"] for r in named]) if named else []):
            cells[r][column]["p_holm"] = adjusted
    lines = ["| recipe | " + " | ".join(f"{c}: nDCG@10 (Δ vs hybrid, 95% CI, Holm p)" for c in columns)
             + " | probe AUC (source) | alpha | train min (S / N) | hardware |",
             "|---|" + "---|" * (len(columns) + 4)]
    for name in recipes:
        s, n = by.get((name, "scifact")), by.get((name, "nfcorpus"))
        probe = " / ".join(f"{r.probe['auc']:.3f}" for r in (s, n) if r and r.probe)
        alpha = " / ".join(f"{r.alpha:g}" for r in (s, n) if r and r.alpha is not None)
        minutes = " / ".join(f"{r.training.get('minutes', '?')}" for r in (s, n) if r)
        hardware = (s or n).training.get("device", "?")
        hardware = (s or n).training.get("cpu", "?") + f" ({(s or n).training.get('cores', '?')} cores)" \
            if hardware == "cpu" else hardware
        lines.append(f"| {name} | " + " | ".join(_show(cells[name][c]) for c in columns)
                     + f" | {probe} | {alpha} | {minutes} | {hardware} |")
    walls = [f"{r.recipe} on {r.source} {r.training['wall_minutes']}" for r in records
             if "wall_minutes" in r.training and r.training["wall_minutes"] > 1.5 * r.training["minutes"]]
    lines += ["", "- Holm: within each column, over the recipes measured there; the raw paired p beside it.",
              "- train min: minutes in training as each record has it" + (
                  f"; where a record also kept its whole run's wall time and that was more than 1.5 times as long "
                  f"(building the supervision), the whole run: {', '.join(walls)}" if walls else "") + ".",
              "- n: the queries measured. SciFact clean counts the test queries none of whose relevant documents "
              "were a positive in any judgment the model read, training or choosing its alpha (a label-free recipe "
              "still chose alpha on SciFact train queries, so its n is below 300).",
              "", "**Takeaways (computed from the table):**", ""]
    lines += [f"- {column}: {_takeaway([(r, cells[r][column]) for r in recipes])}" for column in columns]
    lines += [f"- {_share(r)}" for r in records if r.tests.get("scifact", {}).get("share")]
    return "\n".join(lines)


def _share(record: ModelRecord) -> str:
    """Where a fused recipe's clean lift comes from, and whether it displaces ``ce`` (clean validation)."""
    from .tune import TOLERANCE

    test, share, val = record.tests["scifact"], record.tests["scifact"]["share"], record.validation
    low, high = share["ci95"]
    verdict = "no detectable difference" if low <= 0 <= high else "a difference"
    gain = val["mean"] - val["ce_as_tuned"]
    default = (f"within the tuner's tolerance ({TOLERANCE}), so the default stays `ce`" if gain <= TOLERANCE
               else f"{gain:+.4f} above it")
    return (f"{record.recipe} on SciFact clean: of its {test['clean_delta_vs_input']:+.4f} on {share['queries']} "
            f"queries, fusion without the cross-encoder (weights chosen on the same validation) gives "
            f"{share['without_ce_delta_vs_hybrid']:+.4f}; the cross-encoder's share is {share['ce_share']:+.4f} "
            f"[{low:+.3f}, {high:+.3f}] (paired p {share['p']:.2g}): {verdict} on {share['queries']} queries. "
            f"On its clean validation ({val['queries']} queries) it scores {val['mean']:.4f} against "
            f"{val['ce_as_tuned']:.4f} for `ce` as tuned: {default}. It reuses the committed lab cross-encoder "
            f"({record.training.get('model_minutes')} min on {record.training.get('model_device')}, trained on both "
            f"datasets, hence no leave-one-out column); its train min is the weight choice.")


def _takeaway(cells: Sequence[tuple[str, dict | None]]) -> str:
    """One sentence per column: what lifts after Holm, else the largest difference and why it is not one."""
    measured = [(name, cell) for name, cell in cells if cell and cell.get("delta") is not None]
    if not measured:
        return "nothing measured yet."
    lifted = [(n, c) for n, c in measured if c.get("p_holm", c.get("p")) is not None
              and c.get("p_holm", c.get("p")) < 0.05 and c["delta"] > 0]
    if lifted:
        return "; ".join(f"{n} lifts hybrid by {c['delta']:+.4f} (Holm p {c.get('p_holm', c['p']):.2g}, "
                         f"{c['n']} queries)" for n, c in lifted) + "."
    name, best = max(measured, key=lambda item: item[1]["delta"])
    raw = f", raw p {best['p']:.2g}" if best.get("p") is not None else ""
    difference = Difference(best["delta"], tuple(best["ci"]) if best.get("ci") else None, best.get("p"), best["n"],
                            best.get("p_holm"))
    return (f"no recipe is detectably above hybrid after Holm over {len(measured)} recipes; the largest difference, "
            f"{name} {best['delta']:+.4f}{raw}, is no detectable difference on {best['n']} queries"
            + _power_clause(difference))


def _power_clause(difference: Difference) -> str:
    """`` (power: on 104 queries …).``: what the queries could detect, and how many a true lift of the
    observed size and of :data:`GOAL` would need; ``.`` without an interval."""
    if difference.spread is None:
        return "."
    goal = queries_needed(GOAL, difference.spread)
    return f" (power: {difference.power_sentence().rstrip('.')}; the goal's true +{GOAL:g} about {goal} queries)."


def n_test(record: ModelRecord | None, name: str) -> dict | None:
    return record.tests.get(name) if record else None


def _cell(test: dict | None, part: str | None = None) -> dict | None:
    if not test:
        return None
    if part is None:
        return {"n": test["queries"], "value": test["ndcg@10"], "delta": test["delta"], "ci": test["ci95"],
                "p": test["p"]}
    if f"{part}_queries" not in test:  # no training judgment on this dataset: every query is clean
        return _cell(test)
    return {"n": test[f"{part}_queries"], "value": test.get(f"{part}_ndcg@10"),
            "delta": test.get(f"{part}_delta_vs_input"), "ci": test.get(f"{part}_ci95"),
            "p": test.get(f"{part}_p_raw")}


def _show(cell: dict | None) -> str:
    if not cell or cell["value"] is None:
        return "n/a"
    ci = f", [{cell['ci'][0]:+.3f}, {cell['ci'][1]:+.3f}]" if cell.get("ci") else ""
    p = cell.get("p_holm", cell.get("p"))
    raw = f", raw {cell['p']:.2g}" if cell.get("p_holm") is not None else ""
    return f"{cell['value']:.4f} ({cell['delta']:+.4f}{ci}, p={p:.2g}{raw}; n={cell['n']})" if p is not None else \
        f"{cell['value']:.4f} ({cell['delta']:+.4f}; n={cell['n']})"


def colbert_ablation(dataset: str = "scifact", further: Sequence[str | Path] = ()) -> str:
    """Why the lab ColBERT transfers better than the cross-encoder: the same test queries under the
    lab ColBERT and under zero-shot MaxSim over the MiniLM tokens, each pure and each mixed with
    hybrid at the lab ColBERT's tuned alpha and depth (chosen on train splits), split by the lab
    ColBERT's provenance. ``further``: other checkpoints of its recipe, trained longer or label-free
    (``python -m rerank_lab.train.colbert --steps 360 --output DIR --tune``), each mixed at its own
    tuned alpha and depth and pure, split by its own provenance and the lab ColBERT's. Returns the
    markdown table, then one line per model with its score on the tuning splits (the rule for
    replacing committed weights) and a takeaway computed from the table."""
    from ..analysis.experiment import Experiment
    from ..components.lab_weights import LAB_COLBERT_DIR, read_tuning
    from ..core.interpolate import Interpolate
    from ..core.provenance import provenance
    from ..data import load_dataset
    from ..first_stage import hybrid
    from ..rerankers import load_reranker
    from ..rerankers.colbert import ColBERT
    from ..rerankers.maxsim import ZeroShotMaxSim

    tuning = read_tuning(LAB_COLBERT_DIR)
    data = load_dataset(dataset, split="test")
    first = hybrid() % 100
    depth, alpha = tuning.rerank_depth, tuning.alpha
    zero_shot = ZeroShotMaxSim()
    pipelines = {"hybrid": first,
                 f"lab ColBERT, mixed (alpha {alpha}, top {depth})": first >> load_reranker("colbert"),
                 f"zero-shot MaxSim, mixed (alpha {alpha}, top {depth})":
                     first >> Interpolate(zero_shot, alpha=alpha, rerank_depth=depth, label="zs-mixed"),
                 f"lab ColBERT, pure (top {depth})": first % depth >> load_reranker("colbert", alpha=1.0,
                                                                                    rerank_depth=None),
                 f"zero-shot MaxSim, pure (top {depth})": first % depth >> zero_shot}
    models = {"lab ColBERT": LAB_COLBERT_DIR}
    lab_mixed = f"lab ColBERT, mixed (alpha {alpha}, top {depth})"
    against_lab: dict[str, str] = {}  # each further model's mixed row -> the lab ColBERT's
    for path in map(Path, further):
        label = _recipe_label(path)
        models[label] = path
        own = read_tuning(path)
        scorer = ColBERT(str(path))
        mixed_name = f"{label}, mixed (alpha {own.alpha}, top {own.rerank_depth})"
        pipelines[mixed_name] = first >> Interpolate(scorer, alpha=own.alpha, rerank_depth=own.rerank_depth,
                                                     label=f"colbert-{path.name}")
        against_lab[mixed_name] = lab_mixed
        pipelines[f"{label}, pure (top {own.rerank_depth})"] = first % own.rerank_depth >> scorer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the zero-shot rows are split by the lab ColBERT's records too, so every row has the same clean queries
        exp = Experiment(data, pipelines, metrics=("ndcg@10",), baseline="hybrid", progress=True,
                         trained_on=provenance(load_reranker("colbert"))).run()
    table = exp.markdown(["name", "ndcg@10", "clean_queries", "clean_delta_vs_input", "clean_ci95", "clean_p_raw",
                          "contaminated_delta_vs_input", "contaminated_p_raw"])
    return table + "\n\n" + _ablation_notes(exp, models, against_lab)


def _ablation_notes(exp, models: dict[str, Path], against_lab: dict[str, str]) -> str:
    """Each model's score on its tuning splits, and the takeaway of the ablation's table (with each
    longer-trained model against the lab ColBERT on the clean queries of both)."""
    from ..analysis.evaluate import paired_test
    from ..components.lab_weights import read_tuning

    rows = {r["name"]: r for r in exp.table()}
    lines = ["**On the tuning splits** (held-out SciFact train queries, NFCorpus dev; what decides whether "
             "committed weights are replaced):", ""]
    for label, path in models.items():
        best = read_tuning(path).record.get("chosen_row", {})
        sets = ", ".join(f"{k} {v:.4f}" for k, v in best.get("per_set", {}).items())
        lines.append(f"- {label}: mean {best.get('mean', float('nan')):.4f} ({sets})")
    lines += ["", "**Takeaway (computed from the table):**", ""]
    # the clean part of each mixed row against its input, Holm-corrected as the table's note says
    clean = {name: from_row(row, against="clean") for name, row in rows.items()
             if "mixed" in name and row.get("clean_queries")}
    for name, difference in clean.items():
        lines.append(f"- {name}, clean queries: {difference.phrase()}.")
    undetected = {name: d for name, d in clean.items() if not d.detected and d.spread is not None}
    if undetected:
        name = max(undetected, key=lambda n: undetected[n].delta)
        lines.append(f"- {name}, the largest clean difference{_power_clause(undetected[name])}")
    for name, lab in against_lab.items():
        common = sorted(set(exp.verdicts.splits[name].part("clean")) & set(exp.verdicts.splits[lab].part("clean")))
        if len(common) < 2:
            continue
        test = paired_test(exp.results[lab].restrict(common), exp.results[name].restrict(common), "ndcg@10", exp.test)
        difference = Difference(test.delta, (test.ci_low, test.ci_high), test.p_value, test.queries)
        lines.append(f"- {name} against the lab ColBERT mixed (the committed model), on their common clean queries: "
                     f"{difference.phrase()}.")
    return "\n".join(lines)


def _recipe_label(path: str | Path) -> str:
    """A further checkpoint's row name: its steps and, when label-free, its supervision."""
    from ..components.lab_weights import training_record

    recipe = training_record(path).get("recipe", {})
    supervision = recipe.get("supervision", "labels")
    return f"lab ColBERT recipe, {recipe.get('steps')} steps" + (
        f", {supervision} pseudo-queries" if supervision != "labels" else "")


def _ablation_header(further: Sequence[str]) -> str:
    """How colbert_ablation.md was written, naming each longer-trained checkpoint by its recipe, not its path."""
    from ..components.lab_weights import training_record

    dirs = " ".join(f"DIR{i + 1}" if len(further) > 1 else "DIR" for i in range(len(further)))
    text = ("Written by `python -m rerank_lab.train.transfer --colbert-ablation" + (f" --further {dirs}" * bool(further))
            + "` (SciFact test, split by the lab ColBERT's provenance and each model's own; alpha and depth are "
            "each model's own, tuned on train splits).")
    for name, path in zip(dirs.split(), further):
        record = training_record(path)
        recipe = record.get("recipe", {})
        supervision = recipe.get("supervision", "labels")
        scifact = record.get("data", {}).get("scifact", {}).get("queries")
        read = (f"{scifact} SciFact train queries, the held-out ones and those citing their documents left out"
                if supervision == "labels" else
                f"{scifact} SciFact {supervision} pseudo-queries, no judgment read in training")
        flag = "" if supervision == "labels" else f" --supervision {supervision}"
        text += (f" {name}: `python -m rerank_lab.train.colbert --steps {recipe.get('steps')}{flag} --output {name} --tune`"
                 f", {record.get('seconds', 0) / 60:.0f} min on {record.get('device', '?')} "
                 f"({len(record.get('data', {}))} datasets; {read}).")
    return text + "\n\n"


def load_records(folder: Path) -> list[ModelRecord]:
    return [ModelRecord(**json.loads(p.read_text())) for p in sorted(folder.glob("*-*.json"))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train and measure each recipe where memory cannot pass for relevance.")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--folder", default=str(DEFAULT_FOLDER))
    parser.add_argument("--report", action="store_true", help="only write the table of the records so far")
    parser.add_argument("--colbert-ablation", action="store_true",
                        help="only the ablation of why the lab ColBERT transfers (-> colbert_ablation.md)")
    parser.add_argument("--further", nargs="*", default=[], metavar="DIR",
                        help="with --colbert-ablation: other checkpoints of the lab ColBERT's recipe (longer, label-free)")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if args.colbert_ablation:
        table = colbert_ablation(further=args.further)
        atomic_write_text(folder.parent / "colbert_ablation.md", "# Why the lab ColBERT transfers\n\n"
                          + _ablation_header(args.further) + table + "\n")
        print(table)
        return
    if not args.report:
        for recipe in args.recipes:
            for source in args.sources:
                print(f"[transfer] {recipe} on {source}", flush=True)
                run_model(recipe, source, args.steps, folder, args.device)
    table = summary(load_records(folder))
    atomic_write_text(folder.parent / "transfer_study.md", "# Which recipe learns relevance?\n\n"
                      "Written by `python -m rerank_lab.train.transfer`; see its docstring for the protocol.\n\n"
                      + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
