"""The offline stand-in for a downloaded model: a lab folder copied as a hub download lays it out."""
import pytest

from rerank_lab.components.lab_weights import LAB_CE_DIR
from rerank_lab.components.models import ModelNotAvailable, copy_as_hub_folder


def test_a_hub_layout_copy_holds_the_model_files_and_not_the_lab_records(tmp_path):
    folder = copy_as_hub_folder(LAB_CE_DIR, tmp_path / "lab--minilm-ce")
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", ".gitattributes"} <= names
    assert not names & {"training.json", "tuning.json", "provenance.json"}  # a download says nothing of its training
    (folder / "stale.bin").write_text("x")
    assert "stale.bin" not in {p.name for p in copy_as_hub_folder(LAB_CE_DIR, folder).iterdir()}  # replaced whole


def test_a_folder_without_a_model_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailable, match="no config.json"):
        copy_as_hub_folder(tmp_path / "empty", tmp_path / "out")
