#!/usr/bin/env bash
# The training figures on a GPU (bench/bench_training.py parts c, d, f, g), for both `model_size`
# presets: iterations per second and achieved GFLOP/s against the GPU's matmul peak in the
# training's precision (synthetic batches of the training batches' shape), then each size
# trained for the same wall time and its validation metrics, and the mixed-precision losses
# against float32's. Run from the repository root with the `training` extra installed.
#
#   bash bench/gpu.sh                          # CUDA, 120 s of training per size
#   bash bench/gpu.sh --device cpu --budget 5  # the same script on the CPU, briefly (a check)
#
# About 2 x budget + 2 minutes on a GPU; the dataset cache is built first if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
DEVICE=cuda
BUDGET=120
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    *) echo "usage: bash bench/gpu.sh [--device cuda|cpu] [--budget SECONDS]" >&2; exit 2 ;;
  esac
done
export PYTHONPATH="training_container:.${PYTHONPATH:+:$PYTHONPATH}"
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
"$PYTHON" -m gan.data >/dev/null  # the dataset cache (a no-op when built)
echo "--- throughput (c, d): bench.bench_training --device $DEVICE --only throughput"
"$PYTHON" -m bench.bench_training --device "$DEVICE" --only throughput
echo "--- the same wall time (f, g): bench.bench_training --device $DEVICE --only budget --budget $BUDGET"
"$PYTHON" -m bench.bench_training --device "$DEVICE" --only budget --budget "$BUDGET"
