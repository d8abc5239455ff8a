"""Devices and model sources, the way users run the lab: ``device="auto"`` (the GPU when there is one,
else today's CPU path with unchanged scores), a named device that is not here refused in one line,
and models loaded from folders in hub layout and by id from the hub cache through the same calls,
with one clear error for an id that cannot be reached offline."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rerank_lab.cli import main
from rerank_lab.components.encoder import TokenEncoder, identity_precision
from rerank_lab.components.lab_weights import LAB_CE_DIR, LAB_COLBERT_DIR
from rerank_lab.components.models import MINILM, DeviceUnavailable, ModelNotAvailable, pick_device, resolve_model
from rerank_lab.first_stage import Dense
from rerank_lab.rerankers.colbert import ColBERT
from rerank_lab.rerankers.cross_encoder import CrossEncoderScorer, cross_encoder

REPO = Path(__file__).resolve().parents[2]
GPU = torch.cuda.is_available()
QUERY = "what causes scurvy?"
DOCS = ["Scurvy is a disease caused by a lack of vitamin C in the diet.",
        "The Eiffel Tower was finished in 1889 for the World's Fair in Paris.",
        "Sailors on long voyages fell ill until citrus fruit was carried on board."]
# what a hub snapshot of a transformers model holds (the lab's own records are left behind)
HUB_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "vocab.txt", "artifact.metadata")


def hub_folder(source: Path, target: Path) -> Path:
    """``source``'s model files as a hub snapshot has them (plus the README and .gitattributes every repo carries)."""
    target.mkdir(parents=True)
    for name in HUB_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    (target / "README.md").write_text("---\nlibrary_name: transformers\n---\n")
    (target / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    return target


def dense_folder(target: Path) -> Path:
    """The packaged MiniLM saved as sentence-transformers saves any model (``save_pretrained``)."""
    from sentence_transformers import SentenceTransformer

    SentenceTransformer(resolve_model(MINILM), device="cpu").save(str(target))
    return target


# ----------------------------------------------------------------------------- devices

def test_auto_is_the_gpu_when_there_is_one_and_a_missing_device_is_one_clear_error():
    assert pick_device("auto") == ("cuda" if GPU else "cpu") == pick_device(None)
    assert pick_device("cpu") == "cpu"
    with pytest.raises(DeviceUnavailable, match="unknown device 'tpu'"):
        pick_device("tpu")
    if GPU:
        assert pick_device("cuda") == "cuda"
        return
    for make in (lambda: pick_device("cuda"), lambda: CrossEncoderScorer(str(LAB_CE_DIR), device="cuda"),
                 lambda: Dense(device="cuda:1"), lambda: ColBERT(device="cuda")):
        with pytest.raises(DeviceUnavailable, match="not available here.*use --device auto or cpu"):
            make()


def test_int8_stays_on_the_cpu_under_auto_and_is_refused_on_a_gpu():
    assert CrossEncoderScorer(str(LAB_CE_DIR), mode="int8").runs_on == "cpu"
    assert TokenEncoder(MINILM, mode="int8").runs_on == "cpu"
    if GPU:
        with pytest.raises(ValueError, match="int8.*CPU only"):
            CrossEncoderScorer(str(LAB_CE_DIR), mode="int8", device="cuda")


def test_fp32_identities_are_shared_across_devices_and_reduced_precision_kept_apart():
    assert identity_precision("fp32", "cuda:0") == "fp32" and identity_precision("exact", "cuda") == "exact"
    assert identity_precision("bf16", "cuda:1") == "bf16@cuda" and identity_precision("bf16", "cpu") == "bf16"
    assert CrossEncoderScorer(str(LAB_CE_DIR)).identity() == \
        CrossEncoderScorer(str(LAB_CE_DIR), device="cpu").identity()
    assert Dense().identity() == Dense(device="cpu").identity()


def test_device_auto_scores_as_the_cpu_did(tmp_path):
    auto = cross_encoder(LAB_CE_DIR, device="auto", cache=False).score(QUERY, DOCS)
    cpu = cross_encoder(LAB_CE_DIR, device="cpu", cache=False).score(QUERY, DOCS)
    assert auto == pytest.approx(cpu, abs=1e-4) and np.argmax(cpu) == 0
    assert np.allclose(Dense(device="auto").encode(DOCS), Dense(device="cpu").encode(DOCS), atol=1e-5)


def test_cli_device_auto_equals_cpu_and_cuda_without_a_gpu_is_one_line(capsys, monkeypatch, tmp_path):
    results = {}
    for device in ("cpu", "auto"):
        monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / device))  # each computes its own scores
        assert main(["evaluate", "toy", "bm25>>ce", "--device", device, "--json"]) == 0
        results[device] = json.loads(capsys.readouterr().out)
    assert results["auto"]["ndcg@10"] == results["cpu"]["ndcg@10"] > 0
    assert results["auto"]["device"].startswith("cuda" if GPU else "cpu")
    assert {s["device"] for s in results["cpu"]["stages"]} == {"cpu"}
    if GPU:
        return
    assert main(["evaluate", "toy", "bm25>>ce", "--device", "cuda", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rerank-lab: error: device 'cuda' is not available here")


@pytest.mark.parametrize("module", ["rerank_lab.train.cross_encoder", "rerank_lab.train.colbert",
                                    "rerank_lab.train.zelo.__main__"])
def test_training_commands_refuse_a_missing_device_in_one_line_before_any_work(module, capsys):
    import importlib

    with pytest.raises(SystemExit) as done:
        importlib.import_module(module).main(["--device", "cuda:99"])  # no machine here has a hundredth GPU
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(err) == 1 and "device 'cuda:99' is not available here" in err[0]


def test_the_manifest_and_the_cost_table_record_the_device(toy, tmp_path):
    from rerank_lab import Experiment

    exp = Experiment(toy, ["bm25", "bm25>>ce"], baseline="bm25").run()
    manifest = json.loads((exp.save(tmp_path) / "manifest.json").read_text())
    assert manifest["machine"]["gpu"] == (torch.cuda.get_device_name(0) if GPU else "none")
    devices = {row["name"]: row["device"] for row in manifest["table"]}
    assert devices == {"bm25": "cpu", "bm25>>ce": "cpu+cuda" if GPU else "cpu"}
    assert ("device" in exp.columns()) == GPU  # a column of the printed table once a model ran off the CPU


# ----------------------------------------------------------------------------- hub ids and folders

def test_a_cross_encoder_loads_from_a_hub_layout_folder(tmp_path):
    folder = hub_folder(LAB_CE_DIR, tmp_path / "lab--minilm-ce")
    assert cross_encoder(folder, cache=False).score(QUERY, DOCS) == \
        pytest.approx(cross_encoder(LAB_CE_DIR, cache=False).score(QUERY, DOCS), abs=1e-6)


def test_a_colbert_checkpoint_loads_from_a_hub_layout_folder(tmp_path):
    folder = hub_folder(LAB_COLBERT_DIR, tmp_path / "lab--colbert-minilm")
    # a checkpoint from elsewhere says nothing of query augmentation: the lab one was trained without it
    theirs = ColBERT(str(folder), augment_queries=False, cache=False)
    assert theirs.score(QUERY, DOCS) == pytest.approx(ColBERT(cache=False).score(QUERY, DOCS), abs=1e-5)
    assert theirs.identity()["dim"] == 384


def test_a_dense_model_loads_from_a_saved_sentence_transformers_folder(tmp_path):
    dense = Dense(str(dense_folder(tmp_path / "minilm")))
    assert isinstance(dense.encoder, TokenEncoder)  # its pooling config read from the folder
    assert np.allclose(dense.encode(DOCS), Dense().encode(DOCS), atol=1e-5)


def test_ids_load_from_the_hub_cache_offline(tmp_path, monkeypatch):
    """What a user who downloaded once sees on a plane: ids resolve to their cached snapshots."""
    cache = tmp_path / "hub"
    for repo, make in [("lab/minilm-ce", lambda d: hub_folder(LAB_CE_DIR, d)),
                       ("lab/colbert-minilm", lambda d: hub_folder(LAB_COLBERT_DIR, d)),
                       ("lab/minilm-dense", dense_folder)]:
        root = cache / f"models--{repo.replace('/', '--')}"
        make(root / "snapshots" / ("0" * 40))
        (root / "refs").mkdir()
        (root / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cross_encoder("lab/minilm-ce", cache=False).score(QUERY, DOCS) == \
        pytest.approx(cross_encoder(LAB_CE_DIR, cache=False).score(QUERY, DOCS), abs=1e-6)
    assert ColBERT("lab/colbert-minilm", augment_queries=False, cache=False).score(QUERY, DOCS) == \
        pytest.approx(ColBERT(cache=False).score(QUERY, DOCS), abs=1e-5)
    assert np.allclose(Dense("lab/minilm-dense").encode(DOCS), Dense().encode(DOCS), atol=1e-5)


@pytest.mark.parametrize("make, name", [
    (lambda: Dense("sentence-transformers/nope").encode(["x"]), "sentence-transformers/nope"),
    (lambda: cross_encoder("cross-encoder/ms-marco-MiniLM-L-6-v2").score(QUERY, DOCS),
     "cross-encoder/ms-marco-MiniLM-L-6-v2"),
    (lambda: ColBERT("colbert-ir/colbertv2.0").score(QUERY, DOCS), "colbert-ir/colbertv2.0"),
])
def test_an_unreachable_id_offline_is_one_clear_error(make, name, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # nothing downloaded
    with pytest.raises(ModelNotAvailable) as error:
        make()
    message = str(error.value)
    assert f"cannot load model {name!r}" in message and "local folder" in message and "online" in message
    assert "\n" not in message


def test_a_missing_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(ModelNotAvailable, match=f"no folder at {tmp_path / 'nope'}"):
        Dense(str(tmp_path / "nope")).encode(["x"])


def test_an_unreachable_id_in_the_cli_is_one_line_and_exit_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO), "RERANK_LAB_CACHE": str(tmp_path),
           "RERANK_LAB_PREFER_HUB": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = subprocess.run([sys.executable, "-m", "rerank_lab.cli", "evaluate", "toy", "dense", "--json"], env=env,
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("rerank-lab: error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(errors) == 1 and f"cannot load model '{MINILM}'" in errors[0] and "RERANK_LAB_PREFER_HUB" in errors[0]
