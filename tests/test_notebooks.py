"""Every notebook runs end to end in smoke mode (a few queries, a small corpus) through the same runner
that produces the committed outputs (``scripts/run_notebooks.py``), shows its story as pictures and
saves no noise; the committed copies carry the outputs of full runs, top to bottom."""
from pathlib import Path

import nbformat
import pytest

from rerank_lab.notebook import WIDGET, clean, execute, execution_order, output_text, problems

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _figures(nb) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path):
    nb, run = execute(path, smoke=True, timeout=900)
    assert run.error is None, run.error
    assert _figures(nb) >= 1, "a notebook shows its story as at least one figure"
    assert problems(nb) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_outputs_come_from_a_full_run(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # one run top to bottom in a fresh kernel numbers the cells 1, 2, 3...: a cell re-run, skipped or run
    # out of order (outputs that no single run produced) breaks the sequence
    assert all(c.get("outputs") is not None for c in code)
    assert execution_order(nb) == list(range(1, len(code) + 1)), \
        "commit the notebook after one full top-to-bottom run (python scripts/run_notebooks.py NAME)"
    assert _figures(nb) >= 1
    assert "smoke mode" not in output_text(nb)
    assert problems(nb) == []


def test_the_prototyping_notebook_exists():
    assert any(p.stem == "09_your_models" for p in NOTEBOOKS)


def test_the_checks_catch_widgets_temp_paths_and_chatter():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"state": {}}
    cell = nbformat.v4.new_code_cell("x", execution_count=2)
    cell.outputs = [nbformat.v4.new_output("display_data", data={WIDGET: {"model_id": "1"}, "text/plain": "0%|"}),
                    nbformat.v4.new_output("stream", name="stderr",
                                           text="/tmp/ipykernel_123/1.py:7: RerankingHurt: reranking hurt\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="Some weights ... are newly initialized\n")]
    nb.cells = [cell, nbformat.v4.new_code_cell("y", execution_count=1)]
    found = problems(nb)
    assert len(found) == 4 and any("widget-only" in f for f in found) and any("temp path" in f for f in found)
    assert execution_order(nb) == [2, 1]
    clean(nb)
    assert "widgets" not in nb.metadata and all(WIDGET not in o.get("data", {}) for o in nb.cells[0].outputs)
