"""Shared fixtures. Real data comes from RERANK_LAB_DATA (default: ../shared/beir beside the repo)."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("RERANK_LAB_DATA", str(REPO.parent / "shared" / "beir"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    # Tests never read caches a notebook left behind; they build their own.
    os.environ["RERANK_LAB_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def beir_root() -> Path:
    root = Path(os.environ["RERANK_LAB_DATA"])
    if not (root / "scifact" / "corpus.jsonl").exists():
        pytest.fail(f"real BEIR data not found under RERANK_LAB_DATA={root}: point it at a folder holding "
                    f"scifact/ and nfcorpus/ in BEIR layout (CI uses ../shared/beir)")
    return root


@pytest.fixture(scope="session")
def scifact(beir_root):
    from rerank_lab import load_dataset

    return load_dataset("scifact", split="test")


@pytest.fixture(scope="session")
def nfcorpus(beir_root):
    from rerank_lab import load_dataset

    return load_dataset("nfcorpus", split="test")


@pytest.fixture(scope="session")
def toy():
    from rerank_lab import load_dataset

    return load_dataset("toy")


@pytest.fixture(scope="module", params=["llamacpp", "transformers"])
def small_llm(request):
    """The packaged 0.5B GGUF on each offline runtime (loaded once per test module)."""
    from rerank_lab.llm.backends import load_backend
    from rerank_lab.llm.packaged import SMALL_GGUF

    return load_backend(SMALL_GGUF, request.param)
