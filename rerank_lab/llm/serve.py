"""``python -m rerank_lab.llm.serve``: llama.cpp's OpenAI-compatible server on a packaged GGUF
(what ``scripts/llm_server.sh`` runs). The model is served under its packaged name, with the
context and threads the in-process llama.cpp backend uses, so the LLM families ask for it by name
(``RERANK_LAB_LLM_BACKEND=openai``) and rank as they do in process.

Usage::

    python -m rerank_lab.llm.serve --port 8765 --model qwen2.5-0.5b-instruct-q4_k_m
    server_command("qwen2.5-0.5b-instruct-q4_k_m", port=8765)     # the command, for a test fixture
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

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
