"""OpenVINO graphs: converted once, int8 weights compressed once, and a damaged graph folder (a file
cut short, deleted, overwritten, or unreadable by OpenVINO though its checksums match) moved aside
with one warning and converted again, scores unchanged. The network is the offline MiniLM body with
a seeded head."""
import shutil

import numpy as np
import pytest

from rerank_lab.components import openvino
from rerank_lab.core.files import CacheWarning, checksum_problem, write_checksums
from rerank_lab.rerankers.cross_encoder import CrossEncoderScorer
from tests.support import seeded_cross_encoder

QUERY = "how do I reset my password"
DOCS = ["To reset your password, open settings and choose 'forgot password'.", "Paris is the capital of France.",
        "", "Password resets need the email address of the account " * 3]


@pytest.fixture(scope="module")
def one_logit(tmp_path_factory):
    return seeded_cross_encoder(tmp_path_factory.mktemp("ce1"), 1)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache"))


def test_openvino_graph_is_converted_once(one_logit):
    from rerank_lab.components.stores import cache_dir

    openvino._COMPILED.clear()  # compiled requests are shared per process: start from a cold one
    CrossEncoderScorer(one_logit, max_length=32, mode="exact", backend="openvino").score(QUERY, DOCS[:1])
    graphs = sorted(p.parent for p in cache_dir("openvino").glob("*/model.xml"))
    assert graphs
    stamp = {g: (g / "model.bin").stat().st_mtime_ns for g in graphs}
    openvino._COMPILED.clear()
    CrossEncoderScorer(one_logit, max_length=32, mode="exact", backend="openvino").score(QUERY, DOCS[:1])
    assert {g: (g / "model.bin").stat().st_mtime_ns for g in graphs} == stamp
    with pytest.raises(ValueError, match="backend"):
        CrossEncoderScorer(one_logit, backend="onnx")


def test_fast_compiles_bf16_only_where_the_cpu_has_bf16_kernels(one_logit):
    """A bf16 hint on a CPU without bf16 kernels is emulated, ~35x slower than f32: fast must compile f32 there."""
    openvino._COMPILED.clear()
    scorer = CrossEncoderScorer(one_logit, max_length=32, mode="fast", backend="openvino")
    fast = scorer.score(QUERY, DOCS)
    compiled = [request.requests[0].get_compiled_model() for request in openvino._COMPILED.values()]
    hints = {c.get_property("INFERENCE_PRECISION_HINT").get_type_name() for c in compiled}
    wanted = "bf16" if openvino.supports("BF16") else "f32"
    assert hints == {wanted}, f"fast compiled {hints} on a CPU whose OpenVINO kernels give {wanted}"
    assert scorer.precision == ("fast" if wanted == "bf16" else "exact")
    if wanted == "f32":  # then fast is exact, to the float
        assert fast == CrossEncoderScorer(one_logit, max_length=32, mode="exact", backend="openvino").score(QUERY, DOCS)


def test_int8_openvino_weights_are_int8_compressed_once_and_keep_the_ranking(one_logit):
    import openvino as ov

    from rerank_lab.components.stores import cache_dir

    openvino._COMPILED.clear()
    exact = CrossEncoderScorer(one_logit, max_length=32).score(QUERY, DOCS)
    scores = CrossEncoderScorer(one_logit, max_length=32, mode="int8", backend="openvino").score(QUERY, DOCS)
    assert np.corrcoef(exact, scores)[0, 1] > 0.9
    assert not np.allclose(exact, scores, atol=1e-6)  # quantised, not the float model again
    graphs = sorted(cache_dir("openvino").glob("*/w8/model.xml"))
    assert graphs
    int8_weights = {op.get_friendly_name() for op in ov.Core().read_model(graphs[0]).get_ops()
                    if op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() in ("u8", "i8")
                    and not op.get_friendly_name().endswith("zero_point")}
    assert len(int8_weights) == 6 * 6  # every Linear of the 6-layer encoder is int8 on disk
    assert not [w for w in int8_weights if "classifier" in w or "pooler" in w]
    stamp = {g: g.stat().st_mtime_ns for g in graphs}
    openvino._COMPILED.clear()
    CrossEncoderScorer(one_logit, max_length=32, mode="int8", backend="openvino").score(QUERY, DOCS[:1])
    assert {g: g.stat().st_mtime_ns for g in graphs} == stamp

@pytest.fixture(scope="module")
def clean_graph(one_logit, tmp_path_factory):
    """A cache holding the converted graph, and the scores it gives."""
    cache = tmp_path_factory.mktemp("ov-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RERANK_LAB_CACHE", str(cache))
        openvino._COMPILED.clear()
        scores = CrossEncoderScorer(one_logit, max_length=32, mode="exact", backend="openvino").score(QUERY, DOCS)
    openvino._COMPILED.clear()
    return cache, scores


def _damage(folder, how):
    if how == "truncate model.bin":
        with open(folder / "model.bin", "r+b") as fh:
            fh.truncate(fh.seek(0, 2) // 2)
    elif how == "delete model.bin":
        (folder / "model.bin").unlink()
    elif how == "garbage model.xml":
        (folder / "model.xml").write_bytes(b"\xde\xad not a graph " * 100)
    elif how == "delete checksums.json":
        (folder / "checksums.json").unlink()
    elif how == "garbage model.xml, checksums rewritten":  # only OpenVINO can tell
        (folder / "model.xml").write_bytes(b"<?xml version='1.0'?><net>not a graph</net>")
        write_checksums(folder)


@pytest.mark.parametrize("how", ["truncate model.bin", "delete model.bin", "garbage model.xml",
                                 "delete checksums.json", "garbage model.xml, checksums rewritten"])
def test_a_damaged_graph_is_moved_aside_and_converted_again(one_logit, clean_graph, tmp_path, monkeypatch, how):
    gold, expected = clean_graph
    cache = tmp_path / "damaged-cache"
    shutil.copytree(gold, cache)
    monkeypatch.setenv("RERANK_LAB_CACHE", str(cache))
    (folder,) = [p.parent for p in (cache / "openvino").glob("*/model.xml")]
    _damage(folder, how)
    openvino._COMPILED.clear()
    with pytest.warns(CacheWarning, match="damaged cache") as warned:
        scores = CrossEncoderScorer(one_logit, max_length=32, mode="exact", backend="openvino").score(QUERY, DOCS)
    assert len([w for w in warned if issubclass(w.category, CacheWarning)]) == 1  # one line per damaged graph
    assert np.allclose(scores, expected, atol=1e-6)
    assert checksum_problem(folder) is None and (folder.parent / f"{folder.name}.damaged-0").is_dir()
