"""The LLM plumbing every family shares: sliding windows, the packaged GGUF, single-token labels,
next-token logits on both offline runtimes (llama.cpp and transformers) on the packaged 0.5B GGUF,
prefix reuse, the on-disk call cache, and OpenAI-compatible endpoints."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rerank_lab import BM25
from rerank_lab.llm.backends import OpenAIBackend, load_backend
from rerank_lab.llm.labels import single_token_labels
from rerank_lab.llm.packaged import SMALL_GGUF
from rerank_lab.llm.prompts import listwise_messages, pointwise_messages
from rerank_lab.llm.scorer import sliding_windows
from rerank_lab.rerankers.first import First
from rerank_lab.rerankers.listwise import Listwise
from rerank_lab.rerankers.llm_pointwise import PointwiseLLM


@pytest.mark.parametrize("n, window, stride", [(20, 20, 10), (100, 20, 10), (7, 3, 2), (5, 10, 5), (9, 4, 4), (1, 1, 1)])
def test_sliding_windows_cover_every_candidate_back_to_front(n, window, stride):
    spans = sliding_windows(n, window, stride)
    assert set().union(*(range(s, e) for s, e in spans)) == set(range(n))
    assert spans[0][1] == n and spans[-1][0] == 0
    assert all(e - s <= window for s, e in spans)


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


# ----------------------------------------------------------------------------- labels and logits, real tokenizers

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


# ----------------------------------------------------------------------------- the call cache, real model

@pytest.fixture(scope="module")
def toy_candidates(toy):
    return (BM25() % 4)(toy)


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
