#!/usr/bin/env bash
# Set up what the notebooks need (scripts/setup.sh notebooks: the lift set-up, ColBERT, the offline LLMs and
# their server, calibration, JupyterLab), then start JupyterLab in notebooks/ with the data found:
#   bash scripts/notebooks.sh [jupyter lab options, e.g. --no-browser --port 8889]
# Data: RERANK_LAB_DATA (default ../shared/beir beside the repo, as the other scripts); nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh notebooks
export RERANK_LAB_DATA="${RERANK_LAB_DATA:-$(cd .. && pwd)/shared/beir}"
if [ ! -f "$RERANK_LAB_DATA/scifact/corpus.jsonl" ]; then
  echo "notebooks.sh: no BEIR data under RERANK_LAB_DATA=$RERANK_LAB_DATA (needs scifact/ and nfcorpus/ in BEIR layout)" >&2
  exit 2
fi
export RERANK_LAB_PROGRESS="${RERANK_LAB_PROGRESS:-auto}"   # live bars in JupyterLab; the runner saves with none
exec .venv/bin/jupyter lab --notebook-dir=notebooks "$@"
