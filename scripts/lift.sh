#!/usr/bin/env bash
# Set up what the main job needs (scripts/setup.sh lift: no LLM runtime, whose source build alone takes ~10 minutes),
# then the main job: the SciFact lift chart with the offline defaults
# -> results/lift.png, results/results.md, results/scifact/{runs/*.trec,manifest.json}
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh lift
export RERANK_LAB_DATA="${RERANK_LAB_DATA:-$(cd .. && pwd)/shared/beir}"
exec .venv/bin/rerank-lab lift "${@:-scifact}" --out results
