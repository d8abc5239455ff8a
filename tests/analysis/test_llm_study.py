"""The LLM study's families share one model, passage cut and window, so differences are the method's:
each setting is checked where it acts, in the prompts a recording backend receives."""
import dataclasses
import re

from rerank_lab.analysis.llm_study import StudySettings, llm_methods
from rerank_lab.llm.base import Completion, LLMBackend
from rerank_lab.llm.packaged import SMALL_GGUF
from rerank_lab.llm.scorer import sliding_windows

N_DOCS, WORDS = 12, 50
# document i: i words "good" (its relevance to the recording judge), then "d{i}w1 ... d{i}w50", so the
# last word a prompt shows says where the passage was cut
DOCS = [" ".join(["good"] * i + [f"d{i}w{j}" for j in range(1, WORDS + 1)]) for i in range(N_DOCS)]


class Recording(LLMBackend):
    """Records every prompt; prefers the passage with more "good" words (a deterministic judge)."""

    name = "recording"

    def __init__(self):
        self.prompts: list[str] = []

    def generate(self, messages, max_new_tokens=128, assistant_prefix=""):
        self.prompts.append(messages[-1]["content"])
        return Completion(text="", prompt_tokens=1)  # an unparsable answer: the window keeps its order

    def logits_for_tokens(self, messages, token_ids, assistant_prefix=""):
        raise NotImplementedError

    def next_token_logits(self, messages, candidates, assistant_prefix=""):
        user = messages[-1]["content"]
        self.prompts.append(user)
        pair = re.search(r'Passage A: "(.*)"\n\nPassage B: "(.*)"', user, re.S)
        if pair:
            return Completion(logits=[float(pair.group(k).split().count("good")) for k in (1, 2)], prompt_tokens=1)
        return Completion(logits=[float(user.split().count("good")), 0.0], prompt_tokens=1)


def _run(method):
    backend = Recording()
    scorer = dataclasses.replace(method, backend=backend, cache=False)
    scores = scorer.score("a query", DOCS)
    return scorer, backend.prompts, scores


def _shown(prompt: str) -> set[int]:
    return {int(i) for i in re.findall(r"\bd(\d+)w1\b", prompt)}


def _cut_at(prompts: list[str], words: int) -> bool:
    """Every document shown is cut after exactly ``words`` words (its "good" words count too)."""
    text = "\n".join(prompts)
    for i in set().union(*map(_shown, prompts)):
        kept = words - i
        if not re.search(rf"\bd{i}w{kept}\b", text) or re.search(rf"\bd{i}w{kept + 1}\b", text):
            return False
    return True


def test_the_families_use_the_studys_window_stride_cut_and_passes():
    settings = StudySettings(model=SMALL_GGUF, window=7, stride=3, words=33, pair_passes=2)
    methods = llm_methods(settings)
    assert list(methods) == ["listwise", "first (raw)", "first", "llm-pointwise", "pairwise"]
    assert methods["first"].calibrate and not methods["first (raw)"].calibrate

    listwise, prompts, _ = _run(methods["listwise"])
    spans = sliding_windows(N_DOCS, 7, 3)
    assert listwise.counters["windows"] == len(prompts) == len(spans) == 3
    assert [_shown(p) for p in prompts] == [set(range(a, b)) for a, b in spans]  # order kept by empty answers
    assert _cut_at(prompts, 33)

    pointwise, prompts, scores = _run(methods["llm-pointwise"])
    assert len(prompts) == N_DOCS and [len(_shown(p)) for p in prompts] == [1] * N_DOCS and _cut_at(prompts, 33)
    assert scores == [float(i) for i in range(N_DOCS)]

    pairwise, prompts, scores = _run(methods["pairwise"])
    # PRP-Sliding, both orders per comparison: pass 1 bubbles document 11 to the top over 11 comparisons,
    # pass 2 bubbles document 10 to second place over 10 new ones (the comparison with 11 is remembered)
    assert pairwise.counters["comparisons"] == 11 + 10 and len(prompts) == 2 * 21 and _cut_at(prompts, 33)
    assert sorted(range(N_DOCS), key=lambda i: -scores[i])[:2] == [11, 10]
