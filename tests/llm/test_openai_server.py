"""The OpenAI-compatible backend against a real server: llama.cpp's (``scripts/llm_server.sh``) on the
packaged 0.5B GGUF, started once for the session on a free port. Every LLM family ranks through it
as through the in-process llama.cpp backend on the same model; token counts come from the server's
answers; a server that is down, or serves another model, is one clear error naming the URL."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rerank_lab import BM25, evaluate
from rerank_lab.llm.backends import OpenAIBackend, ServerUnavailable, load_backend
from rerank_lab.llm.packaged import DEFAULT_GGUF, SMALL_GGUF
from rerank_lab.rerankers.first import First
from rerank_lab.rerankers.listwise import Listwise
from rerank_lab.rerankers.llm_pointwise import PointwiseLLM
from rerank_lab.rerankers.pairwise import Pairwise

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llm_server():
    """``bash scripts/llm_server.sh`` on the small model, up until the session ends."""
    port = free_port()
    log = open(Path(os.environ["RERANK_LAB_CACHE"]) / "llm_server.log", "w")
    command = ["bash", str(REPO / "scripts" / "llm_server.sh"), "--port", str(port), "--model", SMALL_GGUF]
    server = subprocess.Popen(command, env={**os.environ, "PYTHON": sys.executable}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as answer:
                served = [m["id"] for m in json.loads(answer.read())["data"]]
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"the LLM server did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(1)
    assert served == [SMALL_GGUF]  # served under its packaged name: the families ask for it by name
    yield url
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def two_queries(toy):
    ids = sorted(toy.queries)[:2]
    return ids, (BM25() % 3)(toy).subset(ids)


FAMILIES = {
    "llm-pointwise": lambda backend: PointwiseLLM(backend=backend, max_passage_words=20, cache=False),
    "first": lambda backend: First(backend=backend, window=3, stride=3, max_passage_words=20, cache=False),
    "listwise": lambda backend: Listwise(backend=backend, window=3, stride=3, max_passage_words=20, max_new_tokens=16,
                                         cache=False),
    "pairwise": lambda backend: Pairwise(backend=backend, method="sliding", passes=1, max_passage_words=20,
                                         cache=False),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_ranks_through_the_server_as_in_process(family, llm_server, toy, two_queries):
    ids, candidates = two_queries
    local = FAMILIES[family](load_backend(SMALL_GGUF, "llamacpp"))
    served = FAMILIES[family](OpenAIBackend(SMALL_GGUF, base_url=llm_server))
    ours, theirs = local(toy, candidates), served(toy, candidates)
    for q in ids:
        assert theirs.doc_ids(q) == ours.doc_ids(q), f"{family} ranks {q} otherwise through the server"
        assert [s for _, s in theirs[q]] == pytest.approx([s for _, s in ours[q]], abs=1e-3)
    qrels = {q: toy.qrels[q] for q in ids}
    assert evaluate(theirs, qrels, ["ndcg@10"]).means == evaluate(ours, qrels, ["ndcg@10"]).means
    mine, server = ours.costs[-1], theirs.costs[-1]
    # the server's usage counts the very prompts the in-process backend ran
    assert server.counters["llm_calls"] == mine.counters["llm_calls"] > 0
    assert server.counters["prompt_tokens"] == mine.counters["prompt_tokens"] > 0
    assert server.device == "server" and mine.device == "cpu"
    assert server.model_seconds > 0


def test_the_environment_points_the_families_at_the_server(llm_server, toy, two_queries, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_LLM_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server)
    ids, candidates = two_queries
    reranker = PointwiseLLM(model=SMALL_GGUF, max_passage_words=20, cache=False)
    run = reranker(toy, candidates)
    assert reranker.llm.identity == f"openai:{llm_server}:{SMALL_GGUF}"
    local = PointwiseLLM(model=SMALL_GGUF, backend="llamacpp", max_passage_words=20, cache=False)(toy, candidates)
    assert all(run.doc_ids(q) == local.doc_ids(q) for q in ids)


def test_first_reads_every_label_by_token_id_even_outside_the_top_20(llm_server):
    served = OpenAIBackend(SMALL_GGUF, base_url=llm_server)
    local = load_backend(SMALL_GGUF, "llamacpp")
    messages = [{"role": "user", "content": "Name a colour."}]
    tokens = local.tokenize(" zebra quantum [A [Q")  # tokens no answer to this prompt would start with
    ours, theirs = local.logits_for_tokens(messages, tokens), served.logits_for_tokens(messages, tokens)
    # logprobs = logits - one constant: every difference between candidates is the in-process one
    diffs = lambda x: [a - x[0] for a in x[1:]]  # noqa: E731
    assert diffs(theirs.logits) == pytest.approx(diffs(ours.logits), abs=1e-3)
    assert theirs.prompt_tokens == ours.prompt_tokens


def test_a_server_serving_another_model_is_refused(llm_server):
    with pytest.raises(ValueError, match=f"serves {SMALL_GGUF}, not '{DEFAULT_GGUF}'"):
        OpenAIBackend(DEFAULT_GGUF, base_url=llm_server).generate([{"role": "user", "content": "hi"}], 4)


def test_a_down_server_is_one_error_naming_the_url_after_retries():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    backend = OpenAIBackend(SMALL_GGUF, base_url=url, retries=2, backoff=0.1, timeout=5)
    t0 = time.perf_counter()
    with pytest.raises(ServerUnavailable, match=url.replace(".", r"\.") + r".*3 tries.*llm_server\.sh"):
        backend.generate([{"role": "user", "content": "hi"}], 4)
    assert time.perf_counter() - t0 >= 0.3  # backed off 0.1 + 0.2 s between the tries


def test_a_down_server_in_the_cli_is_one_line_and_exit_2():
    url = f"http://127.0.0.1:{free_port()}/v1"
    env = {**os.environ, "RERANK_LAB_LLM_BACKEND": "openai", "OPENAI_BASE_URL": url, "RERANK_LAB_LLM": SMALL_GGUF,
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "rerank_lab.cli", "evaluate", "toy", "bm25%2>>llm-pointwise",
                           "--max-queries", "1", "--json"], env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("rerank-lab: error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(errors) == 1 and url in errors[0] and "llm_server.sh" in errors[0]
