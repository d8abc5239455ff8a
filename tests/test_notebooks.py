"""Every notebook runs end to end in smoke mode (a few queries, a small corpus) and shows its
story as pictures; the committed copies carry the outputs of full runs."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _figures(nb) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_SMOKE", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    assert _figures(nb) >= 1, "a notebook shows its story as at least one figure"
    text = "".join(o.get("text", "") for o in _outputs(nb) if o.output_type == "stream")
    assert "Traceback" not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_outputs_come_from_a_full_run(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # one run top to bottom in a fresh kernel numbers the cells 1, 2, 3...: a cell re-run, skipped or run
    # out of order (outputs that no single run produced) breaks the sequence
    assert [c.get("execution_count") for c in code] == list(range(1, len(code) + 1)), \
        "commit the notebook after one full run, top to bottom, in a fresh kernel"
    assert _figures(nb) >= 1
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in _outputs(nb))
    assert "smoke mode" not in text and not [o for o in _outputs(nb) if o.output_type == "error"]
