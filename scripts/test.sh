#!/usr/bin/env bash
# Set everything up (scripts/setup.sh), then run the test suite, notebook smoke runs included.
# Real data: RERANK_LAB_DATA (default ../shared/beir beside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all   # every extra, the LLM runtime included
export RERANK_LAB_DATA="${RERANK_LAB_DATA:-$(cd .. && pwd)/shared/beir}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
