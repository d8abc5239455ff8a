"""The colbert-ai backend: ColBERT's document body run through OpenVINO stores what colbert-ai's own
encoder does. The MiniLM body comes from the packaged model."""
import numpy as np
import pytest

from rerank_lab.rerankers.colbert import ColBERT

DOCS = ["Scurvy is caused by a lack of vitamin C.", "Dogs bark, loudly!", "Cats purr when they are content."]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained lab ColBERT (MiniLM + PCA projection, dim 32): enough to compare the two encoders."""
    from rerank_lab.train.colbert import ColBERTTrainConfig, build_initial_checkpoint

    folder = tmp_path_factory.mktemp("ckpt") / "colbert-tiny"
    return str(build_initial_checkpoint(ColBERTTrainConfig(dim=32, doc_maxlen=64, init="pca"), folder, DOCS * 4))


def test_openvino_document_encoder_equals_colbert_ai(tiny_checkpoint):
    """The lab runs ColBERT's document body through OpenVINO; every stored vector must equal
    colbert-ai's own docFromText (same tokens kept, same values)."""
    texts = DOCS + ["", "A much longer document, with punctuation; and more words. " * 20]
    ours = ColBERT(tiny_checkpoint, bf16=False, cache=False, backend="openvino").encode_documents(texts)
    theirs = ColBERT(tiny_checkpoint, bf16=False, cache=False, backend="torch").encode_documents(texts)
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    assert max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs) if a.size) < 1e-4
