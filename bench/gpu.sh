#!/usr/bin/env bash
# The training throughput figures on a GPU (bench/bench_training.py parts c and d): our model's
# and the lab-sized model's iterations per second, and achieved GFLOP/s against the GPU's matmul
# peak. Synthetic batches of the training batches' shape, so no dataset build is needed.
# Run from the repository root on a machine with CUDA and the `training` extra installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PYTHON" -m bench.bench_training --device cuda --only throughput
