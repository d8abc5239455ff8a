"""LLM reranker families: window bookkeeping, FIRST's ranking and its contextual calibration,
pairwise prompting, and every method end to end on the packaged 0.5B GGUF (both runtimes).

Pure bookkeeping uses a scripted backend; every claim about rankings runs the real packaged model
(assembled once into $RERANK_LAB_MODEL_CACHE, shared between sessions). The backends themselves,
labels, prompts and the call cache are tested in tests/llm/."""
import pytest
import pytrec_eval

from rerank_lab import BM25, Run, evaluate, load_reranker
from rerank_lab.llm.backends import Completion, LLMBackend, load_backend
from rerank_lab.llm.cached import CachedBackend
from rerank_lab.llm.labels import single_token_labels
from rerank_lab.llm.packaged import SMALL_GGUF
from rerank_lab.llm.parse import extract_identifiers
from rerank_lab.llm.prompts import listwise_messages
from rerank_lab.llm.scorer import sliding_windows
from rerank_lab.rerankers import REGISTRY
from rerank_lab.rerankers.first import CONTENT_FREE, First
from rerank_lab.rerankers.listwise import Listwise
from rerank_lab.rerankers.llm_pointwise import PointwiseLLM
from rerank_lab.rerankers.pairwise import Pairwise


def is_permutation_scores(scores, n):
    return len(scores) == n and sorted(scores) == [float(i) for i in range(1, n + 1)]


class ScriptedBackend(LLMBackend):
    """Reverses its window (or answers a fixed text); records every prompt. For bookkeeping only."""

    name = "scripted"

    def __init__(self, answer=None):
        self.answer, self.prompts = answer, []

    def generate(self, messages, max_new_tokens=128, assistant_prefix=""):
        self.prompts.append(messages)
        n = sum(m["content"].count("\n[") for m in messages) or 1
        text = self.answer if self.answer is not None else " > ".join(f"[{i}]" for i in range(n, 0, -1))
        return Completion(text, prompt_tokens=100, completion_tokens=len(text.split()))

    def logits_for_tokens(self, messages, token_ids, assistant_prefix=""):
        self.prompts.append(messages)
        return Completion("", 50, 0, 10, [float(i) for i in range(len(token_ids))])


class _FixedLogits(CachedBackend):
    """``backend``'s tokenizer and template (delegated as the cache does), but every label-logit
    call answered with the same logits, uncached: a pure prior."""

    def __init__(self, backend, logits):
        super().__init__(backend)
        self.fixed = list(logits)

    def logits_for_tokens(self, messages, token_ids, assistant_prefix=""):
        return Completion("", 50, 0, 10, self.fixed[: len(token_ids)])


# ----------------------------------------------------------------------------- bookkeeping

def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="stride"):
        Listwise(backend=ScriptedBackend(), window=4, stride=5)
    with pytest.raises(ValueError, match="prompt style"):
        Listwise(backend=ScriptedBackend(), style="nope")
    with pytest.raises(ValueError, match="pairwise method"):
        Pairwise(backend=ScriptedBackend(), method="tournament")
    with pytest.raises(ValueError, match="LLM backend"):
        Listwise(backend="vllm")


def test_window_moves_the_best_to_the_front_and_counts_cost():
    backend = ScriptedBackend()
    reranker = Listwise(backend=backend, window=3, stride=2, cache=False)
    docs = [f"doc {i}" for i in range(7)]
    scores = reranker.score("q", docs)
    assert is_permutation_scores(scores, 7) and scores[6] == 7.0  # the last bubbles to the top
    assert reranker.counters["windows"] == len(sliding_windows(7, 3, 2)) == reranker.counters["llm_calls"]
    assert reranker.counters["prompt_tokens"] == 100 * reranker.counters["llm_calls"]


@pytest.mark.parametrize("garbage", ["", "I cannot rank these.", "[3] > [3] > [3]", "[99] > [0]", "[2] > [1"])
def test_garbage_outputs_still_give_a_permutation_and_count_repairs(garbage):
    reranker = Listwise(backend=ScriptedBackend(garbage), window=4, stride=2, cache=False)
    assert is_permutation_scores(reranker.score("q", [f"d{i}" for i in range(6)]), 6)
    assert reranker.counters["parse_windows_repaired"] == reranker.counters["windows"] == 2


def test_rankgpt_prompt_has_one_turn_per_passage():
    backend = ScriptedBackend("[2] > [1]")
    Listwise(backend=backend, style="rankgpt", window=2, stride=1, cache=False).score("q", ["a", "b"])
    assert [m["role"] for m in backend.prompts[0]] == ["system", "user", "assistant", "user", "assistant", "user",
                                                       "assistant", "user"]


def test_registry_names_load_lazily():
    for name in ("listwise", "first", "llm-pointwise", "rankgpt", "pairwise"):
        assert name in REGISTRY
        assert "llm" not in load_reranker(name)._state  # nothing loaded until the first score()


# ----------------------------------------------------------------------------- FIRST, real tokenizers

def test_first_top_label_agrees_with_a_greedy_decode_on_a_content_free_window(small_llm):
    labels = single_token_labels(small_llm).take(20)
    messages = listwise_messages("rankzephyr", "what causes scurvy?", [""] * 20, labels=labels.labels)
    logits = small_llm.logits_for_tokens(messages, labels.tokens, labels.prefix).logits
    top = labels.labels[max(range(20), key=lambda i: logits[i])]
    greedy = small_llm.generate(messages, max_new_tokens=6, assistant_prefix=labels.prefix).text
    first_id = extract_identifiers(labels.prefix + greedy, alpha=True)[0]
    assert chr(ord("A") + first_id - 1) == top


def test_calibrated_first_cancels_the_label_prior_of_a_content_free_window(small_llm):
    """Contextual calibration subtracts exactly the content-free prior: on that window every label
    scores 0 and the input order stays; a prior that reorders raw FIRST is cancelled when calibrated."""
    query, blank = "what causes scurvy?", [CONTENT_FREE] * 20
    labels = single_token_labels(small_llm).take(20)
    prior = small_llm.logits_for_tokens(listwise_messages("rankzephyr", query, blank, labels=labels.labels),
                                        labels.tokens, labels.prefix).logits
    assert len(set(prior)) > 1  # a prior to cancel
    calibrated = First(backend=small_llm, window=20, calibrate=True).score(query, blank)
    assert calibrated == [float(20 - i) for i in range(20)]
    against_input = _FixedLogits(small_llm, [-x for x in prior])  # logits that run against the input order
    assert First(backend=against_input, window=20, cache=False, calibrate=False).score(query, blank) != calibrated
    assert First(backend=against_input, window=20, cache=False).score(query, blank) == calibrated


# ----------------------------------------------------------------------------- rerankers end to end, real model

@pytest.fixture(scope="module")
def toy_candidates(toy):
    return (BM25() % 4)(toy)


def test_every_method_ranks_all_candidates_on_toy(toy, toy_candidates, tmp_path_factory):
    llm = load_backend(SMALL_GGUF, "llamacpp")
    one = sorted(toy.queries)[:1]
    short = dict(backend=llm, max_passage_words=20)
    for reranker in [Listwise(**short, window=4, stride=2, max_new_tokens=16), First(**short, window=4, stride=2),
                     PointwiseLLM(**short), Pairwise(**short, method="sliding", passes=1)]:
        candidates = toy_candidates.subset(one)
        run = reranker(toy, candidates)
        assert sorted(run.doc_ids(one[0])) == sorted(candidates.doc_ids(one[0]))
        cost = run.costs[-1]
        assert cost.counters["llm_calls"] > 0 and cost.counters["prompt_tokens"] > 0
        # the ranking is the method's own order (asked again: answered by the call cache) ...
        ids = candidates.doc_ids(one[0])
        again = reranker.score(toy.queries[one[0]].text, [toy.corpus[d].full_text for d in ids])
        assert run.doc_ids(one[0]) == Run.from_scores({one[0]: dict(zip(ids, again))}).doc_ids(one[0])
        # ... and its nDCG@10 is trec_eval's on those scores
        qrels = {q: toy.qrels[q] for q in one}
        theirs = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run.to_dict())[one[0]]["ndcg_cut_10"]
        assert evaluate(run, qrels, ["ndcg@10"])["ndcg@10"] == pytest.approx(theirs, abs=1e-9)


def test_pairwise_cancels_position_and_counts_calls():
    llm = load_backend(SMALL_GGUF, "llamacpp")
    good, bad = "Scurvy is caused by a lack of vitamin C.", "Paris is the capital of France."
    judge = Pairwise(backend=llm, cache=False)
    p = judge.judge("what causes scurvy?", good, bad)
    q = judge.judge("what causes scurvy?", bad, good)
    assert p > 0.5 and p + q == pytest.approx(1.0, abs=0.01)  # both orders averaged: symmetric (kernel drift aside)
    assert judge.counters["llm_calls"] == 4 and judge.counters["comparisons"] == 2
    ranked = Pairwise(backend=llm, method="allpairs", cache=False)
    scores = ranked.score("what causes scurvy?", [bad, good, "Dogs bark."])
    assert scores.index(max(scores)) == 1 and ranked.counters["comparisons"] == 3
    assert len(ranked.last_judgments) == 3 and all(0 <= j.p_a_beats_b <= 1 for j in ranked.last_judgments)
    capped = Pairwise(backend=llm, method="sorting", max_comparisons=2, cache=False)
    assert is_permutation_scores(capped.score("what causes scurvy?", [bad, good, "Dogs bark.", "x"]), 4)
    assert capped.counters["comparisons"] == 2
