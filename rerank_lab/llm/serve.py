"""``python -m rerank_lab.llm.serve``: llama.cpp's OpenAI-compatible server on a packaged GGUF
(what ``scripts/llm_server.sh`` runs). The model is served under its packaged name, with the
context and threads the in-process llama.cpp backend uses, so the LLM families ask for it by name
(``RERANK_LAB_LLM_BACKEND=openai``) and rank as they do in process.

Usage::

    python -m rerank_lab.llm.serve --port 8765 --model qwen2.5-0.5b-instruct-q4_k_m
    server_command("qwen2.5-0.5b-instruct-q4_k_m", port=8765)     # the command, for a test fixture
    with LocalServer("qwen2.5-0.5b-instruct-q4_k_m") as server:  # started on a free port, stopped on exit
        PointwiseLLM(model=server.model, backend=OpenAIBackend(server.model, base_url=server.url))
"""
from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from .defaults import default_model

N_CTX = 8192  # LlamaCppBackend's context: the same KV layout, the same logits


def server_command(model: str, port: int = 8765, host: str = "127.0.0.1", threads: int | None = None,
                   python: str = sys.executable) -> list[str]:
    """The ``python -m llama_cpp.server`` command serving ``model`` (a packaged name, joined and
    verified first, or a .gguf path) as ``model`` on ``host:port``."""
    from .llamacpp import gguf_path

    cores = str(threads or os.cpu_count() or 1)
    return [python, "-m", "llama_cpp.server", "--model", str(gguf_path(model)), "--model_alias", model,
            "--host", host, "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", cores,
            "--n_threads_batch", cores, "--logits_all", "true", "--verbose", "false"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerDidNotStart(RuntimeError):
    """The local LLM server exited or did not answer in time; the message ends with its log."""


class LocalServer:
    """llama.cpp's OpenAI-compatible server (:func:`server_command`) on a packaged GGUF, started
    in the background on a free port of this machine and stopped by :meth:`stop` (or on leaving a
    ``with`` block): what a notebook or a test uses to rank through a real endpoint offline.
    ``url`` is the ``/v1`` base URL to give :class:`~rerank_lab.llm.openai_compat.OpenAIBackend`."""

    def __init__(self, model: str, port: int | None = None, host: str = "127.0.0.1", threads: int | None = None,
                 startup_seconds: float = 300.0):
        self.model, self.host = model, host
        self.port = port or free_port(host)
        self.threads, self.startup_seconds = threads, startup_seconds
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> "LocalServer":
        """Start the server and wait until ``/v1/models`` answers with the model's name."""
        if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
            raise ServerDidNotStart("llama.cpp's server is not installed: run `bash scripts/setup.sh llm`")
        self._log = tempfile.TemporaryFile(mode="w+")
        command = server_command(self.model, self.port, self.host, self.threads)
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        atexit.register(self.stop)  # never outlive the process that started it (a notebook kernel, a test)
        deadline = time.monotonic() + self.startup_seconds
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=5) as answer:
                    served = [m["id"] for m in json.loads(answer.read())["data"]]
                if self.model not in served:
                    raise ServerDidNotStart(f"the server at {self.url} serves {served}, not {self.model}")
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log()[-1500:].strip()
                    self.stop()
                    raise ServerDidNotStart(f"the LLM server for {self.model} did not start: {log}") from None
                time.sleep(1)

    def log(self) -> str:
        """What the server printed so far."""
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s); harmless when it is not running."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None and not self._log.closed:
            self._log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    parser.add_argument("--model", default=None, help="a packaged GGUF name or a .gguf path "
                        "(default: the lab's default LLM, $RERANK_LAB_LLM or the packaged Qwen2.5-Coder-1.5B)")
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        raise SystemExit("llm_server: llama.cpp's server is not installed: run `bash scripts/setup.sh llm` (builds "
                         "llama-cpp-python from source once, about 10 minutes on 2 cores) or "
                         "`pip install 'rerank-lab[server]'`")
    model = args.model or default_model()
    command = server_command(model, args.port, args.host, args.threads)
    print(f"llm_server: serving {model} at http://{args.host}:{args.port}/v1 (RERANK_LAB_LLM_BACKEND=openai "
          f"OPENAI_BASE_URL=http://{args.host}:{args.port}/v1 RERANK_LAB_LLM={model})", file=sys.stderr, flush=True)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
