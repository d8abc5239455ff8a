#!/usr/bin/env bash
# Set everything up, then the main job: the SciFact lift chart with the offline defaults
# -> results/lift.png, results/results.md, results/scifact/{runs/*.trec,manifest.json}
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RERANK_LAB_DATA="${RERANK_LAB_DATA:-$(cd .. && pwd)/shared/beir}"
exec .venv/bin/rerank-lab lift "${@:-scifact}" --out results
