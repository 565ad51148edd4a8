#!/usr/bin/env bash
# A Docker daemon for the image build and tests: `start STATE_DIR` makes sure one answers
# (starting dockerd itself when none does and it can, and saying clearly why when it cannot);
# `stop STATE_DIR` stops what `start` started (dockerd, then its containerd), by pid, and
# nothing else. A daemon that was already running is left alone.
#
# Docker's own store (/var/lib/docker, the layer cache) is the default one, outside the
# checkout, so a clean checkout's next build is cached.
set -euo pipefail

DOCKER=${DOCKER:-docker}
action=${1:?usage: dockerd.sh start|stop STATE_DIR}
state=${2:?usage: dockerd.sh start|stop STATE_DIR}
mkdir -p "$state"

say() { echo "[dockerd] $*" >&2; }

start() {
    if "$DOCKER" info >/dev/null 2>&1; then
        say "a Docker daemon already answers; using it"
        return 0
    fi
    command -v "$DOCKER" >/dev/null || { say "cannot start Docker: no '$DOCKER' command (apt-get install docker.io)"; exit 1; }
    [ "$(uname -s)" = Linux ] || { say "cannot start Docker: not Linux ($(uname -s)); start Docker Desktop, or a daemon DOCKER_HOST points to"; exit 1; }
    if [ "$(id -u)" != 0 ]; then
        say "cannot start Docker: no daemon answers, and starting dockerd needs root (run as root, or start the daemon and join the docker group)"
        exit 1
    fi
    command -v dockerd >/dev/null || { say "cannot start Docker: no dockerd (apt-get install docker.io)"; exit 1; }
    # cgroup v1 with the cgroupfs driver on these machines (shared/notes/docker-here.md)
    dockerd --storage-driver=overlay2 >"$state/dockerd.log" 2>&1 &
    echo $! >"$state/dockerd.pid"
    for _ in $(seq 1 120); do
        if "$DOCKER" info >/dev/null 2>&1; then
            # its containerd, to stop after it should it outlive it
            pgrep -P "$(cat "$state/dockerd.pid")" containerd >"$state/containerd.pid" 2>/dev/null || true
            say "started dockerd (pid $(cat "$state/dockerd.pid"), log $state/dockerd.log)"
            return 0
        fi
        if ! kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null; then
            say "cannot start Docker: dockerd exited at once; its log ($state/dockerd.log) ends:"
            tail -5 "$state/dockerd.log" >&2
            rm -f "$state/dockerd.pid"
            exit 1
        fi
        sleep 0.5
    done
    say "cannot start Docker: dockerd did not answer within 60 s (log $state/dockerd.log)"
    stop
    exit 1
}

# Wait up to $2 seconds for pid $1 to end; SIGKILL it after that.
end() {
    local pid=$1 grace=$2
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 $((grace * 5))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    say "pid $pid still running after ${grace} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

stop() {
    if [ -s "$state/dockerd.pid" ]; then
        say "stopping the dockerd this run started (pid $(cat "$state/dockerd.pid"))"
        end "$(cat "$state/dockerd.pid")" 30
        rm -f "$state/dockerd.pid"
    fi
    if [ -s "$state/containerd.pid" ]; then
        end "$(cat "$state/containerd.pid")" 10
        rm -f "$state/containerd.pid"
    fi
}

case $action in
    start) start ;;
    stop) stop ;;
    *) say "usage: dockerd.sh start|stop STATE_DIR"; exit 2 ;;
esac
