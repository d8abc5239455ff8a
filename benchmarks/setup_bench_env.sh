#!/usr/bin/env bash
# Create .bench-venv (gitignored) for the benchmarks that measure against a peer: PyLate next to rerank_lab
# (benchmarks/colbert_rerank.py) and rank_bm25 (benchmarks/first_stage.py).
# PyLate 1.6.0 depends on fast-plaid, which pins another torch; reranking needs neither its
# index nor a different torch, so .bench-venv sees the main .venv's packages (torch 2.13.0,
# transformers, sentence-transformers, rerank_lab) through a .pth file and adds only PyLate
# (no deps) and its small pure-Python requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "run scripts/setup.sh first (.venv is missing)"; exit 1; }
PY=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')
[ -x .bench-venv/bin/python ] || "$PY" -m venv .bench-venv
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
BENCH_SITE=$(.bench-venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import site; site.addsitedir(\"$SITE\")" > "$BENCH_SITE/main_venv.pth"
.bench-venv/bin/python -m pip install -q --no-deps "pylate==1.6.0" "sentence-transformers==5.3.0" "ujson>=5" "sqlitedict>=2" \
    "rank-bm25==0.2.2"
.bench-venv/bin/python -c "import torch, pylate, rank_bm25; print('bench env ready: torch', torch.__version__, 'pylate', pylate.__version__)"
