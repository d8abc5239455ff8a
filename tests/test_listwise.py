"""Listwise, FIRST and pointwise LLM rerankers.

Fast tests use a scripted backend; the integration tests run the packaged 0.5B GGUF
(assembled once into $RERANK_LAB_MODEL_CACHE, default ~/.cache/rerank_lab/llm: the files
are sha256-verified and content-addressed, so test sessions share them).
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rerank_lab import BM25, evaluate, load_reranker
from rerank_lab.llm.backends import Completion, LLMBackend, OpenAIBackend
from rerank_lab.llm.parse import parse_permutation
from rerank_lab.rerankers import REGISTRY
from rerank_lab.rerankers.listwise import FirstReranker, ListwiseReranker, sliding_windows
from rerank_lab.rerankers.llm_pointwise import PointwiseLLMReranker


def is_permutation_scores(scores, n):
    return len(scores) == n and sorted(scores) == [float(i) for i in range(1, n + 1)]


class ScriptedBackend(LLMBackend):
    """Answers a fixed text (or reverses the window); records every prompt."""

    name = "scripted"

    def __init__(self, answer=None):
        self.answer, self.prompts = answer, []

    def generate(self, messages, max_new_tokens=128, assistant_prefix=""):
        self.prompts.append(messages)
        n = sum(m["content"].count("\n[") for m in messages) or 1
        text = self.answer if self.answer is not None else " > ".join(f"[{i}]" for i in range(n, 0, -1))
        return Completion(text, prompt_tokens=100, completion_tokens=len(text.split()))

    def next_token_logits(self, messages, candidates, assistant_prefix=""):
        self.prompts.append(messages)
        return Completion("", 50, 0, 10, [float(i) for i in range(len(candidates))])


# ----------------------------------------------------------------------------- fast, no model

@pytest.mark.parametrize("n, window, stride", [(20, 20, 10), (100, 20, 10), (7, 3, 2), (5, 10, 5), (9, 4, 4), (1, 1, 1)])
def test_sliding_windows_cover_every_candidate_back_to_front(n, window, stride):
    spans = sliding_windows(n, window, stride)
    assert set().union(*(range(s, e) for s, e in spans)) == set(range(n))
    assert spans[0][1] == n and spans[-1][0] == 0
    assert all(e - s <= window for s, e in spans)
    assert [e for _, e in spans] == sorted((e for _, e in spans), reverse=True)


def test_bad_window_settings_are_refused():
    with pytest.raises(ValueError, match="stride"):
        ListwiseReranker(backend=ScriptedBackend(), window=4, stride=5)
    with pytest.raises(ValueError, match="window must be <= 26"):
        FirstReranker(backend=ScriptedBackend(), window=30, stride=10)
    with pytest.raises(ValueError, match="prompt style"):
        ListwiseReranker(backend=ScriptedBackend(), style="nope")


def test_window_moves_the_best_to_the_front_and_counts_cost():
    backend = ScriptedBackend()  # always reverses its window
    reranker = ListwiseReranker(backend=backend, window=3, stride=2)
    docs = [f"doc {i}" for i in range(7)]
    scores = reranker.score("q", docs)
    assert is_permutation_scores(scores, 7)
    # every document was shown to the model in some window
    shown = "\n".join(m["content"] for p in backend.prompts for m in p)
    assert all(d in shown for d in docs)
    # the last document bubbles to the top through the back-to-front sweep
    assert scores[6] == 7.0
    assert reranker.counters["windows"] == len(sliding_windows(7, 3, 2)) == reranker.counters["llm_calls"]
    assert reranker.counters["prompt_tokens"] == 100 * reranker.counters["llm_calls"]


@pytest.mark.parametrize("garbage", ["", "I cannot rank these.", "[3] > [3] > [3]", "[99] > [0]", "[2] > [1"])
def test_garbage_outputs_still_give_a_permutation_and_count_repairs(garbage):
    reranker = ListwiseReranker(backend=ScriptedBackend(garbage), window=4, stride=2)
    scores = reranker.score("q", [f"d{i}" for i in range(6)])
    assert is_permutation_scores(scores, 6)
    assert reranker.counters["parse_windows_repaired"] == reranker.counters["windows"] == 2
    assert sum(v for k, v in reranker.counters.items() if k.startswith("parse_") and k != "parse_windows_repaired") > 0


def test_rankgpt_prompt_has_one_turn_per_passage():
    backend = ScriptedBackend("[2] > [1]")
    ListwiseReranker(backend=backend, style="rankgpt", window=2, stride=1).score("q", ["a", "b"])
    roles = [m["role"] for m in backend.prompts[0]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]


def test_passes_repeat_the_sweep():
    reranker = ListwiseReranker(backend=ScriptedBackend(), window=2, stride=1, passes=2)
    reranker.score("q", ["a", "b", "c"])
    assert reranker.counters["windows"] == 2 * len(sliding_windows(3, 2, 1))


def test_first_and_pointwise_order_by_logits():
    first = FirstReranker(backend=ScriptedBackend(), window=4, stride=2)
    assert is_permutation_scores(first.score("q", list("abcde")), 5)
    assert first.counters["completion_tokens"] == first.counters["llm_calls"]
    point = PointwiseLLMReranker(backend=ScriptedBackend())
    assert point.score("q", ["a", "b"]) == [-1.0, -1.0]  # logit(Yes)=0, logit(No)=1
    assert point.counters["llm_calls"] == 2


def test_registry_names_load_lazily():
    for name in ("listwise", "first", "llm-pointwise", "rankgpt"):
        assert name in REGISTRY
        reranker = load_reranker(name)
        assert reranker._backend is None  # nothing loaded until the first score()
    assert load_reranker("listwise").style == "rankzephyr"


def test_packaged_gguf_rejects_a_wrong_hash(tmp_path, monkeypatch):
    import sys
    import types

    from rerank_lab.llm import packaged

    part = tmp_path / "part.bin"
    part.write_bytes(b"not a model")
    module = types.ModuleType("fakepart_x1")
    module.get_part_path = lambda: str(part)
    monkeypatch.setitem(sys.modules, "fakepart_x1", module)
    spec = packaged.PackagedGGUF("fake", "none", "fakepart_x", "fakepart-x", "0", 1, "0" * 64)
    monkeypatch.setitem(packaged.PACKAGED_GGUF, "fake", spec)
    monkeypatch.setenv("RERANK_LAB_MODEL_CACHE", str(tmp_path / "models"))
    with pytest.raises(ValueError, match="sha256"):
        packaged.packaged_gguf("fake")
    assert not list((tmp_path / "models").glob("*.gguf"))  # nothing half-written left behind


# ----------------------------------------------------------------------------- OpenAI-compatible

class _FakeOpenAI(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeOpenAI.requests.append((self.path, self.headers.get("Authorization"), body))
        if body.get("logprobs"):
            top = [{"token": t, "logprob": lp} for t, lp in (("C", -0.1), ("A", -1.0), ("Yes", -0.2))]
            choice = {"message": {"content": "C"}, "logprobs": {"content": [{"token": "C", "top_logprobs": top}]}}
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeOpenAI.requests.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_backend_against_a_local_server(openai_server):
    backend = OpenAIBackend("rank-zephyr", base_url=openai_server, api_key="k")
    reranker = ListwiseReranker(backend=backend, window=3, stride=3)
    scores = reranker.score("q", ["a", "b", "c"])
    assert scores == [2.0, 1.0, 3.0]  # "[3] > [1]" then the missing [2]
    path, auth, body = _FakeOpenAI.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer k"
    assert body["model"] == "rank-zephyr" and body["temperature"] == 0 and body["messages"][0]["role"] == "system"
    assert reranker.counters["prompt_tokens"] == 42 and reranker.counters["cached_prompt_tokens"] == 30
    assert reranker.counters["parse_duplicates"] == 1 and reranker.counters["parse_out_of_range"] == 1

    first = FirstReranker(backend=backend, window=3, stride=3)
    assert first.score("q", ["a", "b", "c"]) == [2.0, 1.0, 3.0]  # C > A > B (B absent from top logprobs)
    body = _FakeOpenAI.requests[-1][2]
    assert body["messages"][-1] == {"role": "assistant", "content": "["} and body["continue_final_message"]


def test_openai_backend_names_the_url_when_down():
    backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", retries=0, timeout=2)
    with pytest.raises(ConnectionError, match="127.0.0.1:9"):
        backend.generate([{"role": "user", "content": "hi"}])


# ----------------------------------------------------------------------------- real 0.5B model

@pytest.fixture(scope="module")
def small_llm():
    from rerank_lab.llm.backends import SMALL_GGUF, load_backend

    return load_backend(SMALL_GGUF)


@pytest.fixture(scope="module")
def toy_candidates(toy):
    return (BM25() % 4)(toy)


def test_every_method_gives_a_valid_permutation_on_toy(small_llm, toy, toy_candidates):
    # decoding dominates on CPU: one query, one window of 4 short passages for the generating methods
    one, two = sorted(toy.queries)[:1], sorted(toy.queries)[:2]
    short = dict(backend=small_llm, max_passage_words=20)
    methods = [
        (ListwiseReranker(**short, window=4, stride=2, max_new_tokens=16), one),
        (ListwiseReranker(**short, style="rankgpt", window=4, stride=2, max_new_tokens=16), one),
        (FirstReranker(**short, window=4, stride=2), two),
        (PointwiseLLMReranker(**short), one),
    ]
    for reranker, qids in methods:
        candidates = toy_candidates.subset(qids)
        run = reranker(toy, candidates)
        for qid in qids:
            assert sorted(run.doc_ids(qid)) == sorted(candidates.doc_ids(qid))
            values = [s for _, s in run[qid]]
            if not isinstance(reranker, PointwiseLLMReranker):  # a permutation: distinct ranks n..1
                assert sorted(values) == [float(i) for i in range(1, len(values) + 1)]
        cost = run.costs[-1]
        assert cost.counters["llm_calls"] > 0 and cost.counters["prompt_tokens"] > 0
        qrels = {q: toy.qrels[q] for q in qids}
        assert 0 <= evaluate(run, qrels, ["ndcg@10"])["ndcg@10"] <= 1


def test_first_window_visits_every_candidate_with_the_real_model(small_llm, toy, toy_candidates):
    qid = sorted(toy.queries)[0]
    docs = [toy.corpus[d].full_text for d in toy_candidates.doc_ids(qid)]
    reranker = FirstReranker(backend=small_llm, window=3, stride=2, max_passage_words=20)
    scores = reranker.score(toy.queries[qid].text, docs)
    assert is_permutation_scores(scores, len(docs))
    spans = [w.span for w in reranker.last_windows]
    assert spans == sliding_windows(len(docs), 3, 2)
    assert set().union(*(range(s, e) for s, e in spans)) == set(range(len(docs)))
    # later windows reuse the KV cache of the shared system + query prefix
    assert reranker.counters["cached_prompt_tokens"] > 0


def test_prefix_reuse_gives_the_same_logits(small_llm):
    messages = [{"role": "user", "content": "Is the sky blue? Answer Yes or No."}]
    small_llm.reuse_prefix = False
    plain = small_llm.next_token_logits(messages, ["Yes", "No"]).logits
    small_llm.reuse_prefix = True
    small_llm.next_token_logits([{"role": "user", "content": "Is the grass green?"}], ["Yes"])
    reused = small_llm.next_token_logits(messages, ["Yes", "No"])
    assert reused.cached_tokens > 0
    assert reused.logits == pytest.approx(plain, abs=0.3)  # bf16: same decision, tiny drift
    assert parse_permutation(small_llm.generate(messages, max_new_tokens=3).text, 1).order == [0]


def test_resumable_runs_reuse_their_records(toy):
    from rerank_lab.llm.experiment import cost_table, rerank_resumable

    candidates = (BM25() % 4)(toy)
    backend = ScriptedBackend()
    methods = {"lw": ListwiseReranker(backend=backend, window=4, stride=2), "pw": PointwiseLLMReranker(backend=backend)}
    runs = rerank_resumable(methods, toy, candidates, progress=False)
    calls = len(backend.prompts)
    again = rerank_resumable(methods, toy, candidates, progress=False)
    assert len(backend.prompts) == calls  # everything came from disk
    assert again["lw"].to_dict() == runs["lw"].to_dict() and set(again["lw"].rankings) == set(candidates.rankings)
    rows = {r["method"]: r for r in cost_table(again)}
    per_query = sum(len(candidates.doc_ids(q)) for q in candidates.rankings) / len(candidates.rankings)
    assert rows["pw"]["llm_calls/query"] == round(per_query, 2)  # one call per passage
    assert rows["lw"]["windows_repaired"] == f"0/{len(candidates.rankings)}"  # one clean window per query


def test_listwise_output_is_not_interpolated_away(toy):
    # BaseReranker.alpha is the interpolation weight: the label setting must not shadow it
    reranker = ListwiseReranker(backend=ScriptedBackend(), window=4, stride=2)
    assert reranker.alpha == 1.0 and FirstReranker(backend=ScriptedBackend()).alpha == 1.0
    candidates = (BM25() % 4)(toy)
    qid = next(q for q in candidates.rankings if len(candidates.doc_ids(q)) == 4)
    run = reranker(toy, candidates.subset([qid]))
    assert run.doc_ids(qid) == candidates.doc_ids(qid)[::-1]  # the scripted model reverses its window
