#!/usr/bin/env bash
# `make image-test`: build the training image (layers cached between runs) and run it as
# SageMaker runs a training job (tests/image/). Starts a Docker daemon when none answers and
# this machine allows it (dockerd.sh), and stops what it started at the end, however it ends.
# Fails, never skips, when Docker cannot be had: that is what this command is for.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/training_container/image
PY=${PY:-$REPO/.venv/bin/python}
state=$(mktemp -d "${TMPDIR:-/tmp}/opencomposer-image-test.XXXXXX")

finish() {
    local rc=$?
    bash "$HERE/dockerd.sh" stop "$state" || true
    rm -rf "$state"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

began=$(date +%s)
bash "$HERE/dockerd.sh" start "$state"
image=$(bash "$HERE/build.sh")
built=$(date +%s)
echo "[image-test] image $image built in $((built - began)) s" >&2

cd "$REPO"
OPENCOMPOSER_IMAGE_TESTS=required OPENCOMPOSER_TRAINING_IMAGE="$image" \
    "$PY" -m pytest tests/image -p no:cacheprovider ${PYTEST_ARGS:-}
echo "[image-test] build $((built - began)) s, tests $(($(date +%s) - built)) s, total $(($(date +%s) - began)) s" >&2
