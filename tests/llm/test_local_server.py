"""LocalServer's lifecycle without a model: a server that dies at start is one clear error with its log,
and stopping is always safe. (tests/llm/test_openai_server.py and notebook 09 run the real server.)"""
import sys

import pytest

from rerank_lab.llm import serve
from rerank_lab.llm.serve import LocalServer, ServerDidNotStart, free_port


def test_a_server_that_exits_at_start_is_one_error_naming_its_log(monkeypatch):
    monkeypatch.setattr(serve, "server_command", lambda *a, **k: [sys.executable, "-c", "print('no such model'); raise SystemExit(3)"])
    monkeypatch.setattr(serve.importlib.util, "find_spec", lambda name: object())
    server = LocalServer("some-model", startup_seconds=30)
    with pytest.raises(ServerDidNotStart, match="did not start: no such model"):
        server.start()
    assert not server.running
    server.stop()  # again: harmless


def test_free_ports_are_ports_and_the_url_names_them():
    port = free_port()
    assert 0 < port < 65536
    assert LocalServer("m", port=port).url == f"http://127.0.0.1:{port}/v1"
