#!/usr/bin/env bash
# An OpenAI-compatible LLM server: llama.cpp's (llama-cpp-python[server]) on a packaged GGUF.
#   bash scripts/llm_server.sh [--port 8765] [--model qwen2.5-0.5b-instruct-q4_k_m] [--host 127.0.0.1]
# then point the LLM families at it:
#   RERANK_LAB_LLM_BACKEND=openai OPENAI_BASE_URL=http://127.0.0.1:8765/v1 rerank-lab evaluate ...
# The default model is the lab's default LLM ($RERANK_LAB_LLM, else the packaged Qwen2.5-Coder-1.5B), the one
# the families ask for. Needs the llm set-up: bash scripts/setup.sh llm. Stop it with Ctrl-C or kill PID.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
exec "$PY" -m rerank_lab.llm.serve "$@"
