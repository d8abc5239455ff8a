"""What the notebooks share: smoke mode, dataset sizing, small display helpers, quiet output, and the
one runner that executes them (for committed outputs and for CI's smoke runs alike).

``RERANK_LAB_SMOKE=1`` (set by the runner's smoke mode, which tests/test_notebooks.py uses) makes
every notebook run on a few queries over a cut-down corpus (their judged documents plus random
distractors), so the whole story executes in minutes while the committed outputs come from full runs.

Importing this module makes a notebook's output readable where it is saved: a package warning
(``RerankingHurt``, ``LiftFromMemory``...) shows as one line naming its kind, without a file path;
transformers' and the Hugging Face hub's log chatter and progress widgets are turned off (their
errors still show).

Usage::

    from rerank_lab.notebook import SMOKE, notebook_dataset, ranking_table, show
    ds = notebook_dataset("scifact")          # full test split, or a smoke-sized sample
    ranking_table(run, ds, "q1")              # rank, document, title, score, judged grade
    show(experiment, ["name", "ndcg@10", "delta_ndcg@10", "ci95", "p_raw", "p_holm"])   # table + its Holm families

    python scripts/run_notebooks.py [--smoke] [00_why_rerank ...]    # execute, clean and save
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from .core.data import Dataset
from .core.run import Run
from .data import load_dataset

SMOKE = os.environ.get("RERANK_LAB_SMOKE", "").lower() not in {"", "0", "false", "no"}
SMOKE_QUERIES = 5
SMOKE_DISTRACTORS = 100
#: the repository's notebooks folder (a source checkout)
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"
#: what a saved output must not hold: temp folders (a kernel's cell files live there) and third-party chatter
NOISE = {
    "a temp path": re.compile(r"/tmp/|ipykernel_\d|/var/folders/|\\Temp\\"),
    "Hugging Face initialisation chatter": re.compile(r"newly initialized|You should probably TRAIN this model"),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
}


def notebook_dataset(name: str, split: str = "test", max_queries: int | None = None, seed: int = 0) -> Dataset:
    """The dataset a notebook should use: in smoke mode a few queries and a small corpus."""
    dataset = load_dataset(name, split=split)
    if SMOKE:
        return dataset.sample(SMOKE_QUERIES, SMOKE_DISTRACTORS, seed=seed)
    if max_queries is not None:
        return dataset.sample(max_queries, seed=seed)
    return dataset


def notebook_tuning_dataset(name: str = "scifact", max_queries: int | None = None, seed: int = 0) -> Dataset:
    """The lab's tuning split of ``name`` as a dataset: the queries a notebook may make *choices* on (a depth,
    a length, a weight). SciFact: 100 train queries held out from the lab models' training; NFCorpus: dev;
    never test. ``max_queries`` samples a subset; in smoke mode a few of them over a small corpus.

    Usage: ``ds = notebook_tuning_dataset("scifact", max_queries=40)``
    """
    from .train.negatives import tuning_dataset

    dataset = tuning_dataset(name)
    if SMOKE:
        return dataset.sample(SMOKE_QUERIES, SMOKE_DISTRACTORS, seed=seed)
    if max_queries is not None and max_queries < len(dataset.queries):
        return dataset.sample(max_queries, seed=seed)
    return dataset


def notebook_tuning_sets(name: str = "scifact", first_stage: str = "hybrid", candidates: int = 100):
    """:func:`notebook_tuning_dataset` with its first stage's candidates, as the
    :class:`~rerank_lab.train.tune.TuningSet` s :func:`~rerank_lab.train.tune.tune` takes."""
    from .specs import first_stage_by_name
    from .train.tune import TuningSet

    dataset = notebook_tuning_dataset(name)
    return [TuningSet(name, dataset.split, dataset, (first_stage_by_name(first_stage) % candidates)(dataset))]


def ranking_table(run: Run, dataset: Dataset, query_id: str, k: int = 10, score_name: str = "score"):
    """One query's top ``k`` as a DataFrame: rank, document id, title (or text start), score, grade."""
    import pandas as pd

    judged = dataset.qrels.get(query_id, {})
    rows = []
    for rank, (doc_id, score) in enumerate(run[query_id][:k], start=1):
        doc = dataset.corpus[doc_id]
        rows.append({"rank": rank, "document": doc_id, "title": doc.title or doc.text[:60],
                     score_name: round(score, 4), "grade": judged.get(doc_id, "-")})
    return pd.DataFrame(rows).set_index("rank")


def show(experiment, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Display an experiment's table as markdown, with the notes naming what each Holm correction
    covers (:meth:`~rerank_lab.analysis.experiment.Experiment.markdown`)."""
    from IPython.display import Markdown, display

    table = experiment.table()
    columns = [c for c in columns if any(c in row for row in table)] if columns else None
    text = experiment.markdown(columns)
    if columns is not None:  # name only the families of the columns shown
        shown = " ".join(columns)
        drop = [prefix for prefix, marker in (("- vs input:", "vs_input"), ("- clean / contaminated:", "clean_"))
                if marker not in shown]
        text = "\n".join(line for line in text.splitlines() if not line.startswith(tuple(drop)))
    display(Markdown((f"**{title}**\n\n" if title else "") + text))


COST_COLUMNS = ("llm_calls", "prompt_tokens", "completion_tokens", "cache_hits", "pairs", "truncated_pairs", "docs_encoded")


def stage_costs(run: Run):
    """One row per stage of ``run`` (a pipeline's output): model seconds (empty caches) beside the wall
    seconds this run spent, per-query model latency, items scored and the stage's own counters."""
    import pandas as pd

    rows = []
    for cost in run.costs:
        d = cost.as_dict()
        rows.append({"stage": d["stage"], "model s": round(d["model_seconds"], 2), "wall s (this run)": round(d["seconds"], 2),
                     "model ms/query (median)": round(1000 * d["model_median_query_seconds"], 1),
                     "model ms/query (p95)": round(1000 * d["model_p95_query_seconds"], 1),
                     "items scored": d["items_scored"], **{k: int(d[k]) for k in COST_COLUMNS if d.get(k)}})
    return pd.DataFrame(rows).set_index("stage").fillna(0)


def families(*experiments) -> None:
    """Display what each Holm correction of these experiments covers (for a table built by hand)."""
    from IPython.display import Markdown, display

    lines = list(dict.fromkeys(line for exp in experiments for line in exp.families()))
    display(Markdown("\n".join(f"- {line}" for line in lines) or "- no significance test in this table"))


def takeaways(lines: Sequence[str], title: str = "What we learned (computed from the tables above)") -> None:
    """Display computed takeaway lines as a markdown list."""
    from IPython.display import Markdown, display

    display(Markdown(f"**{title}**\n\n" + "\n".join(f"- {line}" for line in lines)))


# -- quiet, readable output -----------------------------------------------------------------------
def _one_line(message, category, filename, lineno, file=None, line=None):
    """Package warnings (and any warning pointing into a kernel's temp cell file) as one line."""
    own = category.__module__.startswith("rerank_lab") or "ipykernel_" in str(filename) \
        or str(filename).startswith(str(Path(__file__).resolve().parent))
    if not own:
        return _DEFAULT_SHOW(message, category, filename, lineno, file, line)
    stream = file or sys.stderr
    try:
        stream.write(f"⚠ {category.__name__}: {message}\n")
    except (OSError, ValueError):
        pass


_DEFAULT_SHOW = warnings.showwarning


def quiet_output() -> None:
    """One-line package warnings; transformers and the hub log errors only and draw no progress
    widgets. Called on import; calling it again is harmless."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if "transformers" in sys.modules:
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        except ImportError:
            pass
    warnings.showwarning = _one_line


quiet_output()


# -- the runner -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NotebookRun:
    """One execution: where, in which mode, how long, on what machine, and what went wrong."""

    name: str
    smoke: bool
    seconds: float
    machine: dict = field(default_factory=dict)
    error: str | None = None

    def line(self) -> str:
        mode = "smoke" if self.smoke else "full"
        cpu = self.machine.get("cpu", "?")
        status = f"FAILED: {self.error}" if self.error else "ok"
        return f"{self.name}: {mode} run, {self.seconds / 60:.1f} min on {cpu} ({self.machine.get('cores', '?')} cores): {status}"


def _set_environment(values: dict[str, str | None]) -> None:
    """Set each variable; None unsets it."""
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def kernel_environment(smoke: bool, progress: str = "none") -> dict[str, str | None]:
    """What the kernel of a runner execution sees: smoke mode on or off, progress bars as asked
    (none: a saved notebook cannot animate them), quiet third-party logs, and this checkout's
    package first on the path."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {"RERANK_LAB_SMOKE": "1" if smoke else None, "RERANK_LAB_PROGRESS": progress,
            "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "PYTHONPATH": os.pathsep.join([root] + [p for p in path.split(os.pathsep) if p and p != root])}


def clean(nb) -> None:
    """Drop what a saved notebook should not carry: widget-only outputs (they render as "0%|" outside
    a live kernel), widget state in the metadata, and the kernel's run timestamps."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.get("outputs", []) if WIDGET not in o.get("data", {})]
        for output in cell.outputs:
            output.get("metadata", {}).pop("widgets", None)


def execute(path: str | Path, smoke: bool = False, timeout: int | None = None, progress: str = "none",
            kernel: str = "python3"):
    """Run a notebook top to bottom in a fresh kernel started in its folder (nbclient), then
    :func:`clean` it; returns ``(notebook, NotebookRun)``. A failing cell stops the run; the
    notebook (with outputs up to the error) and the error line are returned, nothing is saved."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from .analysis.manifest import machine

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    error = None
    start = time.perf_counter()
    with _environment(kernel_environment(smoke, progress)):
        client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        except CellExecutionError as exc:
            error = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    seconds = time.perf_counter() - start
    clean(nb)
    return nb, NotebookRun(path.stem, smoke, seconds, machine(), error)


def run_notebooks(names: Sequence[str] = (), smoke: bool = False, save: bool = True, timeout: int | None = None,
                  folder: str | Path = NOTEBOOKS, record: bool = True, copy_to: str | Path | None = None) -> list[NotebookRun]:
    """Execute notebooks (all in ``folder`` when ``names`` is empty; a name is a stem such as
    ``"00_why_rerank"`` or a prefix such as ``"00"``). A full run that succeeds is saved over the
    notebook and its time and machine recorded in ``runtimes.json`` beside it; a smoke run is never
    saved there (committed outputs come from full runs). ``copy_to``: a folder that receives every
    executed copy, failed or smoke runs included (to read what a run printed)."""
    import nbformat

    folder = Path(folder)
    paths = sorted(folder.glob("*.ipynb"))
    if names:
        chosen = [p for p in paths if any(p.stem == n or p.stem.startswith(n) for n in names)]
        unknown = [n for n in names if not any(p.stem == n or p.stem.startswith(n) for p in paths)]
        if unknown:
            raise FileNotFoundError(f"no notebook named {', '.join(unknown)} in {folder}")
        paths = chosen
    runs = []
    for path in paths:
        nb, run = execute(path, smoke=smoke, timeout=timeout)
        print(run.line(), flush=True)
        runs.append(run)
        if copy_to is not None:
            Path(copy_to).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, Path(copy_to) / path.name)
        if run.error or smoke:
            continue
        if save:
            nbformat.write(nb, path)
        if record:
            record_runtime(folder / "runtimes.json", run)
    return runs


def record_runtime(file: Path, run: NotebookRun) -> None:
    """Add a full run's wall time and machine to the runtimes file (one entry per notebook)."""
    from .core.files import atomic_write_text

    runs = json.loads(file.read_text()) if file.exists() else {}
    runs[run.name] = {"minutes": round(run.seconds / 60, 1), "cpu": run.machine.get("cpu"),
                      "cores": run.machine.get("cores"), "gpu": run.machine.get("gpu"),
                      "date": time.strftime("%Y-%m-%d")}
    atomic_write_text(file, json.dumps(dict(sorted(runs.items())), indent=1) + "\n")


# -- what the tests check on saved notebooks ------------------------------------------------------
def output_text(nb) -> str:
    """Every output's text (streams, plain text, markdown, HTML, errors) joined."""
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts.append(str(o.get("text", "")))
            parts.extend(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
            parts.extend(o.get("traceback", []) or [])
    return "\n".join(parts)


def problems(nb) -> list[str]:
    """What makes a saved notebook noisy: widget-only progress outputs, widget metadata, temp paths,
    third-party initialisation chatter, tracebacks, error outputs."""
    found = []
    if "widgets" in nb.metadata:
        found.append("widget state in the notebook metadata")
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if WIDGET in o.get("data", {}):
                found.append(f"cell {i}: a widget-only output")
            if o.get("output_type") == "error":
                found.append(f"cell {i}: an error ({o.get('ename')})")
    text = output_text(nb)
    for what, pattern in NOISE.items():
        match = pattern.search(text)
        if match:
            found.append(f"{what}: ...{text[max(0, match.start() - 40):match.end() + 40]!r}...")
    return found


def execution_order(nb) -> list[int | None]:
    """The execution counts of the code cells, in order (a full top-to-bottom run gives 1, 2, 3 ...)."""
    return [c.get("execution_count") for c in nb.cells if c.cell_type == "code"]


__all__ = ["NOTEBOOKS", "NotebookRun", "SMOKE", "clean", "execute", "execution_order", "families", "kernel_environment", "notebook_tuning_sets", "stage_costs",
           "notebook_dataset", "output_text", "problems", "quiet_output", "ranking_table", "record_runtime",
           "run_notebooks", "show", "takeaways"]
