#!/usr/bin/env bash
# Build the training image (training_container/Dockerfile) on a local base that needs no
# registry, with every layer cached between runs. Prints the image's tag on stdout.
#
#   training_container/image/build.sh        # as root, with a Docker daemon (dockerd.sh starts one)
#
# AWS's PyTorch training image, the Dockerfile's default base, cannot be pulled here. In its
# place (docs/image.md):
#   1. a Debian root filesystem from Debian's own mirror (debootstrap, minbase, with python3),
#      imported as an image: rebuilt only when its recipe changes (the tarball is kept);
#   2. the project's pinned wheels, gathered on the host with `pip wheel` at the versions the
#      .venv holds (`pip freeze`), so the image runs what the tests ran;
#   3. the base (base.Dockerfile): a Python environment with torch, numpy and boto3, as AWS's
#      image has them, whose pip reads only those wheels;
#   4. the training Dockerfile, unchanged, with BASE_IMAGE set to that base, from a build
#      context cut down to what it copies (infra/components/paths.py, as `cdk deploy` cuts it).
#
# Caches live outside the checkout (a clean checkout's rerun is cached): the rootfs tarball and
# the wheels in $OPENCOMPOSER_IMAGE_CACHE (default /var/cache/opencomposer/image as root, else
# ~/.cache/opencomposer/image), the layers in Docker's own store.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/training_container/image
DOCKER=${DOCKER:-docker}
PY=${PY:-$REPO/.venv/bin/python}
IMAGE=${OPENCOMPOSER_TRAINING_IMAGE:-opencomposer-training:local}
BASE_IMAGE=opencomposer-training-base:local
COMPOSE_IMAGE=${OPENCOMPOSER_COMPOSE_IMAGE:-opencomposer-compose:local}
COMPOSE_BASE_IMAGE=opencomposer-compose-base:local
LABEL=org.opencomposer.image=training  # on every image built here, so a prune takes ours only
SUITE=bookworm  # Debian 12: its python3 is 3.11, the project's Python
ROOTFS_PACKAGES=python3,python3-venv,ca-certificates
if [ "$(id -u)" = 0 ]; then
    CACHE=${OPENCOMPOSER_IMAGE_CACHE:-/var/cache/opencomposer/image}
else
    CACHE=${OPENCOMPOSER_IMAGE_CACHE:-$HOME/.cache/opencomposer/image}
fi

step() { echo "[image $(date +%T)] $*" >&2; }
fail() { echo "[image] error: $*" >&2; exit 1; }

[ -x "$PY" ] || fail "no $PY: run 'make setup' first (the wheels are pinned to the .venv's versions)"
"$DOCKER" info >/dev/null 2>&1 || fail "no Docker daemon answers '$DOCKER info' (training_container/image/dockerd.sh starts one)"
mkdir -p "$CACHE"

# --- 1. the root filesystem -------------------------------------------------------------------
mirror() {
    if [ -n "${OPENCOMPOSER_DEBIAN_MIRROR:-}" ]; then echo "$OPENCOMPOSER_DEBIAN_MIRROR"; return; fi
    # this machine's own Debian mirror (deb822 sources, then the one-line format), else Debian's
    # (awk picks the first, reading all: `head` would break the pipe, a failure under pipefail)
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true
      grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' || true
    } | awk '/debian/ && !/security/ && !m {m = $0} END {print m ? m : "http://deb.debian.org/debian"}'
}
MIRROR=$(mirror)
RECIPE="debootstrap --variant=minbase --include=$ROOTFS_PACKAGES $SUITE $MIRROR"
ROOTFS_IMAGE=opencomposer-rootfs:$SUITE-$(echo "$RECIPE" | sha256sum | cut -c1-12)
ROOTFS_TAR=$CACHE/${ROOTFS_IMAGE#opencomposer-rootfs:}.tar
if "$DOCKER" image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
    step "root filesystem: $ROOTFS_IMAGE (cached)"
else
    if [ ! -s "$ROOTFS_TAR" ]; then
        command -v debootstrap >/dev/null || fail "debootstrap is missing (apt-get install debootstrap)"
        [ "$(id -u)" = 0 ] || fail "debootstrap needs root"
        step "root filesystem: $RECIPE"
        rootfs=$CACHE/rootfs.tmp
        rm -rf "$rootfs"
        debootstrap $(echo "$RECIPE" | cut -d' ' -f2-3) "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
            || fail "debootstrap failed, see $CACHE/debootstrap.log"
        # apt's lists and archives are no use in an image that never runs apt
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
        rm -rf "$rootfs"
    fi
    step "root filesystem: importing $ROOTFS_TAR as $ROOTFS_IMAGE"
    "$DOCKER" import --change 'CMD ["/bin/bash"]' "$ROOTFS_TAR" "$ROOTFS_IMAGE" >/dev/null
fi

# --- 2. the wheels --------------------------------------------------------------------------
BASE_CONTEXT=$CACHE/base-context
WHEELS=$BASE_CONTEXT/wheels
mkdir -p "$BASE_CONTEXT"
# The .venv's versions of everything installed (the project itself, editable, aside).
"$PY" -m pip freeze --exclude-editable | grep -E '^[A-Za-z0-9_.-]+==' >"$CACHE/venv-constraints.txt"
cp "$HERE/base-requirements.txt" "$BASE_CONTEXT/base-requirements.txt"
# The compose image's wheels too (lambdas/compose/requirements.txt, its index line aside: the
# host's pip configuration finds the CPU torch), so that it builds offline on the same base.
grep -v '^--' "$REPO/lambdas/compose/requirements.txt" >"$BASE_CONTEXT/compose-requirements.txt"
KEY=$(cat "$CACHE/venv-constraints.txt" "$HERE/base-requirements.txt" \
      "$REPO/training_container/requirements.txt" "$BASE_CONTEXT/compose-requirements.txt" \
      | sha256sum | cut -c1-16)
if [ "$(cat "$BASE_CONTEXT/wheels.key" 2>/dev/null)" = "$KEY" ] && [ -d "$WHEELS" ]; then
    step "wheels: $WHEELS (cached)"
else
    step "wheels: pip wheel into $WHEELS"
    rm -rf "$WHEELS.new" "$BASE_CONTEXT/wheels.key"
    mkdir -p "$WHEELS"
    # The host's pip configuration finds the local wheels (the CPU torch among them). The wheels
    # gathered before come first: a wheel built from an sdist again would differ in its zip
    # timestamps alone, and so miss Docker's layer cache for the whole base.
    "$PY" -m pip wheel --wheel-dir "$WHEELS.new" --find-links "$WHEELS" \
        -r "$HERE/base-requirements.txt" -r "$REPO/training_container/requirements.txt" \
        -r "$BASE_CONTEXT/compose-requirements.txt" \
        -c "$CACHE/venv-constraints.txt" >"$CACHE/pip-wheel.log" 2>&1 \
        || { tail -20 "$CACHE/pip-wheel.log" >&2; fail "pip wheel failed (log: $CACHE/pip-wheel.log)"; }
    rm -rf "$WHEELS" && mv "$WHEELS.new" "$WHEELS"
    # The image's pins: exactly the wheels gathered (name-version-...whl), not the whole .venv,
    # so a package added to the .venv changes nothing in the image.
    for wheel in "$WHEELS"/*.whl; do
        basename "$wheel" | cut -d- -f1,2 | sed 's/-/==/'
    done | sort >"$BASE_CONTEXT/constraints.txt"
    echo "$KEY" >"$BASE_CONTEXT/wheels.key"
fi

# --- 3. the base ----------------------------------------------------------------------------
step "base: $BASE_IMAGE"
"$DOCKER" build --quiet -f "$HERE/base.Dockerfile" --build-arg "ROOTFS_IMAGE=$ROOTFS_IMAGE" --label "$LABEL" \
    -t "$BASE_IMAGE" "$BASE_CONTEXT" >/dev/null || fail "the base image did not build"

# --- 4. the training image ------------------------------------------------------------------
read -r -a CONTEXT <<<"$(cd "$REPO" && "$PY" -c 'from infra.components.paths import TRAINING_IMAGE_CONTEXT as c; print(*c)')"
step "training image: $IMAGE (training_container/Dockerfile, BASE_IMAGE=$BASE_IMAGE)"
tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' -c "${CONTEXT[@]}" \
    | "$DOCKER" build -f training_container/Dockerfile --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --label "$LABEL" -t "$IMAGE" - >&2 \
    || fail "the training image did not build"
# --- 5. the compose function's image -------------------------------------------------------
# lambdas/compose/Dockerfile, unchanged, on the same base with Lambda's task root (in place of
# Lambda's Python image, which cannot be pulled here either).
step "compose image: $COMPOSE_IMAGE (lambdas/compose/Dockerfile, BASE_IMAGE=$COMPOSE_BASE_IMAGE)"
printf 'FROM %s\nENV LAMBDA_TASK_ROOT=/var/task\nRUN mkdir -p /var/task\nWORKDIR /var/task\n' "$BASE_IMAGE" \
    | "$DOCKER" build --quiet --label "$LABEL" -t "$COMPOSE_BASE_IMAGE" - >/dev/null \
    || fail "the compose base image did not build"
read -r -a CONTEXT <<<"$(cd "$REPO" && "$PY" -c 'from infra.components.paths import COMPOSE_IMAGE_CONTEXT as c; print(*c)')"
tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' -c "${CONTEXT[@]}" \
    | "$DOCKER" build -f lambdas/compose/Dockerfile --build-arg "BASE_IMAGE=$COMPOSE_BASE_IMAGE" \
        --label "$LABEL" -t "$COMPOSE_IMAGE" - >&2 \
    || fail "the compose image did not build"

# The images each rebuild leaves untagged, ours only (by label): the cache keeps what it needs.
"$DOCKER" image prune --force --filter "label=$LABEL" >/dev/null
echo "$IMAGE"
