"""LLM rerankers: window bookkeeping, the FIRST label rule, pairwise prompting, cached calls,
and both offline runtimes (llama.cpp and transformers) on the packaged 0.5B GGUF.

Pure bookkeeping uses a scripted backend; every claim about tokens, logits and rankings runs the
real packaged model (assembled once into $RERANK_LAB_MODEL_CACHE, shared between sessions)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rerank_lab import BM25, evaluate, load_reranker
from rerank_lab.llm.backends import Completion, LLMBackend, OpenAIBackend, load_backend
from rerank_lab.llm.cached import CachedBackend
from rerank_lab.llm.labels import single_token_labels
from rerank_lab.llm.packaged import SMALL_GGUF
from rerank_lab.llm.parse import extract_identifiers
from rerank_lab.llm.prompts import listwise_messages, pointwise_messages
from rerank_lab.llm.scorer import sliding_windows
from rerank_lab.rerankers import REGISTRY
from rerank_lab.rerankers.first import CONTENT_FREE, First
from rerank_lab.rerankers.listwise import Listwise
from rerank_lab.rerankers.llm_pointwise import PointwiseLLM
from rerank_lab.rerankers.pairwise import Pairwise

BACKENDS = ["llamacpp", "transformers"]


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


@pytest.fixture(scope="module", params=BACKENDS)
def small_llm(request):
    return load_backend(SMALL_GGUF, request.param)


# ----------------------------------------------------------------------------- bookkeeping

@pytest.mark.parametrize("n, window, stride", [(20, 20, 10), (100, 20, 10), (7, 3, 2), (5, 10, 5), (9, 4, 4), (1, 1, 1)])
def test_sliding_windows_cover_every_candidate_back_to_front(n, window, stride):
    spans = sliding_windows(n, window, stride)
    assert set().union(*(range(s, e) for s, e in spans)) == set(range(n))
    assert spans[0][1] == n and spans[-1][0] == 0
    assert all(e - s <= window for s, e in spans)


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


def test_packaged_gguf_rejects_a_wrong_hash(tmp_path, monkeypatch):
    import sys
    import types

    from rerank_lab.llm import packaged

    part = tmp_path / "part.bin"
    part.write_bytes(b"not a model")
    module = types.ModuleType("fakepart_x1")
    module.get_part_path = lambda: str(part)
    monkeypatch.setitem(sys.modules, "fakepart_x1", module)
    monkeypatch.setitem(packaged.PACKAGED_GGUF, "fake",
                        packaged.PackagedGGUF("fake", "none", "fakepart_x", "fakepart-x", "0", 1, "0" * 64))
    monkeypatch.setenv("RERANK_LAB_MODEL_CACHE", str(tmp_path / "models"))
    with pytest.raises(ValueError, match="sha256"):
        packaged.packaged_gguf("fake")
    assert not list((tmp_path / "models").glob("*.gguf"))  # nothing half-written left behind


# ----------------------------------------------------------------------------- FIRST's label rule, real tokenizers

def test_first_scores_the_canonical_first_token_of_every_label_at_window_20(small_llm):
    labels = single_token_labels(small_llm).take(20)
    assert "O" not in labels.labels and "Q" not in labels.labels  # Qwen2.5 does not merge "[O" or "[Q"
    messages = listwise_messages("rankzephyr", "what causes scurvy?", [f"passage {i}" for i in range(20)],
                                 labels=labels.labels)
    prompt = small_llm.prompt_text(messages) + labels.prefix
    head = small_llm.tokenize(prompt)
    for label, token in zip(labels.labels, labels.tokens):
        canonical = small_llm.tokenize(prompt + f"[{label}]" if not labels.prefix else prompt + f"{label}]")
        assert canonical[: len(head)] == head and canonical[len(head)] == token, label
        assert f"[{label}]" in messages[-1]["content"]  # the prompt shows the label it scores
    assert len(set(labels.tokens)) == 20
    with pytest.raises(ValueError, match="at most 24"):
        single_token_labels(small_llm).take(26)


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


def test_yes_no_gap_equals_a_greedy_decodes_own_logits_and_is_never_constant(small_llm):
    gaps = []
    for passage in ["Scurvy is caused by a lack of vitamin C.", "The Eiffel Tower is in Paris.",
                    "Vitamin C deficiency leads to scurvy, bleeding gums and fatigue."]:
        messages = pointwise_messages("what causes scurvy?", passage)
        out = small_llm.next_token_logits(messages, ["Yes", "No"])
        yes, no = small_llm.continuation_token(messages, "", "Yes"), small_llm.continuation_token(messages, "", "No")
        direct = small_llm.logits_for_tokens(messages, [yes, no]).logits
        assert out.logits == pytest.approx(direct, abs=0.15)  # a reused prefix runs other kernel shapes
        greedy = small_llm.generate(messages, max_new_tokens=1).text.strip()
        if greedy in ("Yes", "No"):  # the decoded answer is the side the gap favours
            assert (out.logits[0] > out.logits[1]) == (greedy == "Yes")
        gaps.append(out.logits[0] - out.logits[1])
    assert max(gaps) - min(gaps) > 0.05  # the old llama.cpp path read an all-zero row: every gap 0.0


def test_the_two_runtimes_agree_on_tokens_and_answers():
    llama, hf = load_backend(SMALL_GGUF, "llamacpp"), load_backend(SMALL_GGUF, "transformers")
    messages = listwise_messages("rankzephyr", "what causes scurvy?", ["vitamin C", "the moon"])
    assert llama.prompt_ids(messages) == hf.prompt_ids(messages)
    assert single_token_labels(llama).labels == single_token_labels(hf).labels
    for passage in ["Scurvy is caused by a lack of vitamin C.", "The Eiffel Tower is in Paris."]:
        a = llama.next_token_logits(pointwise_messages("what causes scurvy?", passage), ["Yes", "No"]).logits
        b = hf.next_token_logits(pointwise_messages("what causes scurvy?", passage), ["Yes", "No"]).logits
        assert a == pytest.approx(b, abs=0.5)  # the same weights; bf16 and llama.cpp's kernels differ in rounding


def test_prefix_reuse_gives_the_same_logits(small_llm):
    messages = [{"role": "user", "content": "Is the sky blue? Answer Yes or No."}]
    small_llm.reuse_prefix = False
    plain = small_llm.next_token_logits(messages, ["Yes", "No"]).logits
    small_llm.reuse_prefix = True
    small_llm.next_token_logits([{"role": "user", "content": "Is the sky blue? Answer in one word."}], ["Yes"])
    reused = small_llm.next_token_logits(messages, ["Yes", "No"])
    assert reused.cached_tokens > 0
    assert reused.logits == pytest.approx(plain, abs=0.3)  # the same decision; bf16 / kernel order drift only


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
        assert 0 <= evaluate(run, {q: toy.qrels[q] for q in one}, ["ndcg@10"])["ndcg@10"] <= 1


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


def test_llm_calls_are_cached_on_disk_and_a_rerun_costs_the_same_model_time(toy, toy_candidates, tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))  # an empty call cache
    llm = load_backend(SMALL_GGUF, "llamacpp")
    candidates = toy_candidates.subset(sorted(toy.queries)[:2])
    cold = PointwiseLLM(backend=llm, max_passage_words=20)(toy, candidates).costs[-1]
    warm_reranker = PointwiseLLM(backend=llm, max_passage_words=20)
    warm_run = warm_reranker(toy, candidates)
    warm = warm_run.costs[-1]
    assert cold.counters.get("cache_hits", 0) == 0 and warm.counters["cache_hits"] == warm.counters["llm_calls"]
    assert warm.counters.get("cache_misses", 0) == 0
    assert cold.model_seconds / 1.5 <= warm.model_seconds <= cold.model_seconds * 1.5 and warm.seconds < cold.seconds / 2


# ----------------------------------------------------------------------------- OpenAI-compatible endpoints

class _FakeOpenAI(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeOpenAI.requests.append((self.path, self.headers.get("Authorization"), body))
        if body.get("logprobs"):
            top = [{"token": t, "logprob": lp} for t, lp in (("Yes", -0.2), ("No", -1.5))]
            choice = {"message": {"content": "Yes"}, "logprobs": {"content": [{"token": "Yes", "top_logprobs": top}]}}
        else:
            choice = {"message": {"role": "assistant", "content": "[3] > [1] > [3] > [7]"}}
        reply = {"choices": [choice], "usage": {"prompt_tokens": 42, "completion_tokens": 9,
                                                "prompt_tokens_details": {"cached_tokens": 30}}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def openai_server():
    server = HTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _FakeOpenAI.requests.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_backend_against_a_local_server(openai_server):
    backend = OpenAIBackend("rank-zephyr", base_url=openai_server, api_key="k")
    reranker = Listwise(backend=backend, window=3, stride=3, cache=False)
    assert reranker.score("q", ["a", "b", "c"]) == [2.0, 1.0, 3.0]  # "[3] > [1]" then the missing [2]
    path, auth, body = _FakeOpenAI.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer k" and body["temperature"] == 0
    assert reranker.counters["prompt_tokens"] == 42 and reranker.counters["cached_prompt_tokens"] == 30
    point = PointwiseLLM(backend=backend, cache=False)
    assert point.score("q", ["a"]) == [pytest.approx(1.3)]  # logprob(Yes) - logprob(No) from top_logprobs
    with pytest.raises(NotImplementedError, match="tokenizer="):  # FIRST needs to know the label tokens
        First(backend=backend, window=3, stride=3, cache=False).score("q", ["a", "b", "c"])


def test_openai_backend_names_the_url_when_down():
    backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", retries=0, timeout=2)
    with pytest.raises(ConnectionError, match="127.0.0.1:9"):
        backend.generate([{"role": "user", "content": "hi"}])
