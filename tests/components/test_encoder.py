"""The shared token encoder on the real packaged MiniLM: OpenVINO streams and int8 weights."""
import numpy as np
import pytest

from rerank_lab.components import openvino
from rerank_lab.components.encoder import TokenEncoder
from rerank_lab.components.models import MINILM

pytestmark = pytest.mark.skipif(not openvino.available(), reason="needs OpenVINO (the [openvino] extra)")


@pytest.fixture(scope="module")
def texts(scifact):
    # different lengths, so batches are padded and rows of one batch differ in their masks
    return [scifact.corpus[d].full_text for d in list(scifact.corpus)[:7]] + ["a short text", "x"]


def _encoder(monkeypatch, streams: int, mode: str = "exact") -> TokenEncoder:
    monkeypatch.setattr(openvino, "default_streams", lambda: streams)
    return TokenEncoder(MINILM, max_length=64, mode=mode, batch_size=4)


def test_two_streams_return_what_one_request_does(monkeypatch, texts):
    one = _encoder(monkeypatch, 1).encode(texts)
    two_encoder = _encoder(monkeypatch, 2)
    two = two_encoder.encode(texts)
    compiled = two_encoder._loaded()["request"].get_compiled_model()
    assert int(compiled.get_property("NUM_STREAMS")) == 2  # the split really ran on two streams
    assert [s.shape for s in one] == [s.shape for s in two]
    assert max(float(np.abs(a - b).max()) for a, b in zip(one, two)) < 1e-5
    # a single row (nothing to split) goes through one request
    assert np.allclose(two_encoder.encode(texts[-1:])[0], one[-1], atol=1e-5)


def test_int8_encoding_keeps_the_embeddings_and_has_its_own_identity(monkeypatch, texts):
    exact = _encoder(monkeypatch, 2)
    int8 = _encoder(monkeypatch, 2, "int8")
    assert int8.precision == "int8" and int8.identity() != exact.identity()  # stores never mix the two
    a, b = exact.encode(texts, pooled=True), int8.encode(texts, pooled=True)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99
    assert not np.allclose(a, b, atol=1e-6)  # int8 weights really ran
