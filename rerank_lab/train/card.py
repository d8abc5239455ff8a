"""The model card of a lab-trained reranker: what it learned from, how it is used, what it memorised.

``README.md`` beside the weights (the file model hubs show as the card), written from the records
the recipes leave there: ``training.json`` (or ColBERT's ``rerank_lab_training.json``),
``provenance.json``, ``tuning.json`` and ``probe.json`` (the memorisation probe,
:mod:`rerank_lab.analysis.memorisation`, computed here when missing).

Usage::

    python -m rerank_lab.train.card rerank_lab/weights/lab-ce       # probe (if missing) + README.md
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Sequence

from ..components.lab_weights import read_tuning, training_record
from ..components.provenance import read_provenance
from ..core.files import atomic_write_text

PROBE_FILE = "probe.json"


def probe_model(folder: str | os.PathLike, reranker=None) -> dict:
    """Run the memorisation probe on every dataset the model trained on, judged or label-free (a
    corpus alone can teach a lean toward judged-looking documents); write ``probe.json``."""
    from ..analysis.memorisation import PROBE_SOURCES, memorisation_probe

    folder = Path(folder)
    if reranker is None:
        reranker = _pure_reranker(folder)
    datasets = sorted({r.dataset for r in read_provenance(folder) if r.role == "train" and r.dataset in PROBE_SOURCES})
    results = {name: memorisation_probe(reranker, name).as_dict() for name in datasets}
    atomic_write_text(folder / PROBE_FILE, json.dumps(results, indent=1) + "\n")
    return results


def _pure_reranker(folder: Path):
    if (folder / "artifact.metadata").exists():
        from ..rerankers.colbert import ColBERT

        return ColBERT(str(folder))
    from ..rerankers.cross_encoder import cross_encoder

    length = training_record(folder).get("config", {}).get("max_length", 256)
    return cross_encoder(str(folder), mode="fast", max_length=int(length))


def model_card(folder: str | os.PathLike) -> str:
    """The card's markdown, from the records in ``folder``."""
    folder = Path(folder)
    record = training_record(folder)
    config = record.get("config") or record.get("recipe") or {}
    lines = [f"# {folder.name}", "", "A reranker trained by rerank_lab's recipes. Everything below is read from the "
             "records beside the weights; `python -m rerank_lab.train.card` rewrites this card.", "",
             "## Recipe", ""]
    for key in ("model", "base", "supervision", "loss", "teacher", "label_bonus", "cross_query_negatives",
                "n_negatives", "max_length", "max_steps", "steps", "groups_per_step", "lr"):
        if key in config:
            lines.append(f"- {key}: `{config[key]}`")
    if "device" in record:
        lines.append(f"- trained on: {record['device']}, {record.get('minutes', '?')} minutes")
    lines += ["", "## Learned from (provenance)", ""]
    for r in read_provenance(folder):
        queries = "every query" if r.query_ids is None else f"{len(r.query_ids)} queries"
        kind = "judgments" if r.labels else "the corpus only (no judgment)"
        lines.append(f"- `{r.label}` ({r.role}): {queries}, {kind}")
    lines += ["", "Test queries whose relevant documents were positives here are *contaminated* for this model: "
              "rerank_lab reports its lift on them apart from the clean ones.", ""]
    tuning = read_tuning(folder)
    if tuning.record:
        lines += ["## How it is used (tuned on train/dev splits)", "",
                  f"- mixed with its first stage at alpha {tuning.alpha}, reranking the top {tuning.rerank_depth}",
                  f"- settings: `{json.dumps(tuning.scorer_settings)}`", ""]
    probe_path = folder / PROBE_FILE
    if probe_path.exists():
        lines += ["## Memorisation probe", "",
                  "AUC of 'was a positive in the judgments it read' (training, or for a label-free model tuning) when "
                  "documents are scored under queries that say nothing about them (another dataset's queries, the "
                  "empty query, \"the\"); 0.5: no document prior.", ""]
        for name, result in json.loads(probe_path.read_text()).items():
            lines.append(f"- {name}: AUC {result['auc']:.3f} (range {result['auc_min']:.3f}–{result['auc_max']:.3f}; "
                         f"{result['positives']} training positives against {result['others']} other documents)")
        lines.append("")
    return "\n".join(lines)


def write_card(folder: str | os.PathLike) -> Path:
    return atomic_write_text(Path(folder) / "README.md", model_card(folder))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the model card (and the memorisation probe) of lab weights.")
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--reprobe", action="store_true", help="run the probe again even if probe.json exists")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if args.reprobe or not (Path(folder) / PROBE_FILE).exists():
            print(json.dumps(probe_model(folder)))
        print(f"wrote {write_card(folder)}")


if __name__ == "__main__":
    main()
