"""The main job's set-up leaves the offline LLM runtime out (a ~10 minute source build): the first use
of an LLM family without it must say what to install, in the API and as one line in the CLI."""
import importlib.util
import types

import pytest

import rerank_lab.llm.backends as backends
from rerank_lab.cli import main
from rerank_lab.llm.packaged import SMALL_GGUF
from rerank_lab.rerankers.llm_pointwise import PointwiseLLM


@pytest.fixture
def no_llm_runtime(monkeypatch):
    """This process as the lift set-up leaves it: neither llama-cpp-python nor transformers' GGUF reader."""
    real = importlib.util.find_spec
    hidden = types.SimpleNamespace(util=types.SimpleNamespace(
        find_spec=lambda name, *a: None if name.split(".")[0] in ("llama_cpp", "gguf") else real(name, *a)))
    monkeypatch.setattr(backends, "importlib", hidden)


@pytest.mark.parametrize("backend, missing", [("llamacpp", "llama-cpp-python"), ("transformers", "gguf")])
def test_a_first_llm_use_names_what_to_install(no_llm_runtime, backend, missing):
    expected = rf"needs {missing}: run `bash scripts/setup\.sh llm`.*RERANK_LAB_LLM_BACKEND=openai"
    with pytest.raises(ImportError, match=expected):
        PointwiseLLM(model=SMALL_GGUF, backend=backend, cache=False).score("what causes scurvy?", ["vitamin C"])


def test_the_cli_says_it_in_one_line(no_llm_runtime, monkeypatch, capsys):
    monkeypatch.setenv("RERANK_LAB_LLM_BACKEND", "llamacpp")
    monkeypatch.setenv("RERANK_LAB_LLM", SMALL_GGUF)
    assert main(["evaluate", "toy", "bm25%2>>llm-pointwise", "--max-queries", "1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rerank-lab:")]
    assert len(err) == 1 and "bash scripts/setup.sh llm" in err[0]
