#!/usr/bin/env bash
# keyward benchmark: bench/run.sh [--smoke] [more options: bench/run.sh --help]
#
# Builds keyward (release), starts an origin, a passthrough worker, the JavaScript verifier, keyward,
# keyward with origin signing on and keyward with the cache off under wrangler dev, seeds keys (plain and
# with a per-key rate limit) through keyward's admin API, checks each
# system once with curl, then drives them with wrk and writes bench/results/<stamp>/{table.md,summary.json}
# (+ raw/, git-ignored). Not part of the test command. A full run takes about 10-14 minutes on 2 cores;
# --smoke takes a couple of minutes, mostly wrangler start-ups.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
# Turns wrangler's devtools inspector off: otherwise it attaches to workerd and costs CPU per request.
export VSCODE_INSPECTOR_OPTIONS=1
# Turns wrangler's local-dev observability off: it streams every request's tail events into a SQLite-backed
# collector inside the worker's workerd (about 1.2 ms of CPU per request here, more than the worker itself).
# KEYWARD_BENCH_LOCAL_OBSERVABILITY=true keeps it.
export X_LOCAL_OBSERVABILITY="${KEYWARD_BENCH_LOCAL_OBSERVABILITY:-false}"

# Tools: the project's setup script (idempotent, installs only what is missing), then wrk from Debian.
if [[ -f "$ROOT/scripts/setup.sh" && -z "${KEYWARD_BENCH_NO_SETUP:-}" ]]; then
  bash "$ROOT/scripts/setup.sh"
fi
if ! command -v wrk >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "[bench] installing wrk (Debian)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null
  else
    echo "[bench] wrk is required: apt-get install -y wrk" >&2
    exit 1
  fi
fi
for tool in python3 node wrangler curl wrk; do
  command -v "$tool" >/dev/null || { echo "[bench] missing tool: $tool" >&2; exit 1; }
done

# The Python script stops what it starts (process groups) itself; this trap is the backstop if it is
# killed hard: it stops every process group the script recorded that is still alive.
export KEYWARD_BENCH_PGID_FILE
KEYWARD_BENCH_PGID_FILE="$(mktemp /tmp/keyward-bench-pgids.XXXXXX)"
cleanup() {
  local pgid
  while read -r pgid; do
    [[ -n "$pgid" ]] || continue
    if kill -0 -- "-$pgid" 2>/dev/null; then
      echo "[bench] stopping leftover process group $pgid"
      kill -TERM -- "-$pgid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
  done <"$KEYWARD_BENCH_PGID_FILE"
  rm -f "$KEYWARD_BENCH_PGID_FILE"
}
trap cleanup EXIT
PY_PID=""
forward() {
  echo "[bench] $1: stopping the benchmark"
  if [[ -n "$PY_PID" ]]; then kill -TERM "$PY_PID" 2>/dev/null || true; wait "$PY_PID" 2>/dev/null || true; fi
  exit 130
}
trap 'forward SIGINT' INT
trap 'forward SIGTERM' TERM
trap 'forward SIGHUP' HUP

# In the background + wait, so that a signal to this script is handled at once and passed on.
python3 "$BENCH_DIR/bench.py" "$@" &
PY_PID=$!
rc=0
wait "$PY_PID" || rc=$?
exit "$rc"
