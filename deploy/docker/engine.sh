#!/usr/bin/env bash
# Start or stop a local Docker engine, for machines where no service manager runs one.
#
#   deploy/docker/engine.sh start    # no-op when `docker info` already answers; else starts
#                                    # dockerd (as root) and waits until it answers
#   deploy/docker/engine.sh stop     # stops the engine only if this script started it
#   deploy/docker/engine.sh status   # exit 0 when an engine answers
#
# Exit codes: 0 ok, 1 the engine failed to start, 3 dockerd is not installed, 4 not root.
# DOCKERD_LOG (default /tmp/dockerd.log) receives the engine's output; DOCKERD_TIMEOUT (default
# 60) is how many seconds `start` waits for it.
set -euo pipefail

STATE_DIR=${XDG_RUNTIME_DIR:-/tmp}
PIDFILE=$STATE_DIR/restaurant-sentiment-dockerd.pid
LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
TIMEOUT=${DOCKERD_TIMEOUT:-60}
DOCKER=${DOCKER:-docker}

answers() { "$DOCKER" info >/dev/null 2>&1; }

ours() {
    [[ -f $PIDFILE ]] || return 1
    local pid
    pid=$(<"$PIDFILE")
    [[ -n $pid && -d /proc/$pid && $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]
}

start() {
    if answers; then
        echo "Docker engine: running"
        return 0
    fi
    local dockerd
    dockerd=$(command -v dockerd || true)
    if [[ -z $dockerd ]]; then
        echo "Docker engine: dockerd is not installed (apt-get install docker.io)" >&2
        return 3
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "Docker engine: not running, and starting dockerd needs root" >&2
        return 4
    fi
    if ! ours; then
        # A new session, so the engine outlives the shell or test run that started it.
        setsid "$dockerd" >"$LOG" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
    fi
    local pid deadline
    pid=$(<"$PIDFILE")
    deadline=$((SECONDS + TIMEOUT))
    until answers; do
        if [[ ! -d /proc/$pid ]]; then
            rm -f "$PIDFILE"
            echo "Docker engine: dockerd exited; the end of $LOG:" >&2
            tail -n 20 "$LOG" >&2
            return 1
        fi
        if ((SECONDS >= deadline)); then
            echo "Docker engine: no answer after ${TIMEOUT}s; see $LOG" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "Docker engine: started (pid $pid, log $LOG)"
}

stop() {
    if ! ours; then
        echo "Docker engine: not started by this script; left alone"
        rm -f "$PIDFILE"
        return 0
    fi
    local pid deadline
    pid=$(<"$PIDFILE")
    kill -TERM "$pid"
    deadline=$((SECONDS + 30))
    while [[ -d /proc/$pid ]] && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if [[ -d /proc/$pid ]]; then
        echo "Docker engine: still running after 30s (pid $pid)" >&2
        return 1
    fi
    rm -f "$PIDFILE"
    echo "Docker engine: stopped"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) answers ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
