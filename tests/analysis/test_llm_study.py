"""The LLM study's families share one model, passage cut and window, so differences are the method's."""
from rerank_lab.analysis.llm_study import StudySettings, llm_methods
from rerank_lab.llm.packaged import SMALL_GGUF


def test_every_family_reads_the_same_settings():
    settings = StudySettings(model=SMALL_GGUF, window=7, stride=3, words=33, pair_passes=2)
    methods = llm_methods(settings)
    assert list(methods) == ["listwise", "first (raw)", "first", "llm-pointwise", "pairwise"]
    assert {m.model for m in methods.values()} == {SMALL_GGUF}
    assert {m.max_passage_words for m in methods.values()} == {33}
    assert all((m.window, m.stride) == (7, 3) for n, m in methods.items() if n.startswith(("listwise", "first")))
    assert methods["first"].calibrate and not methods["first (raw)"].calibrate
    assert methods["pairwise"].passes == 2 and methods["pairwise"].method == "sliding"
