#!/usr/bin/env bash
# keyward admin API at scale (issue #15): bench/admin-scale.sh [--keys N] [--exclusive] [more: --help]
#
# Builds keyward (release), seeds one workspace with 100,000 keys in bulk into local D1 and KV (cloned
# from a key the worker made, checked by a full reconcile that must write nothing), then times the admin
# calls one at a time (list first page, a page deep in the cursor chain, filtered lists, audit, get,
# create, revoke, every page of a full reconcile) and writes bench/results/<stamp>-admin-scale/
# {table.md,summary.json,plans.txt} and bench/admin-scale/plans.txt. Not part of the test command.
# About 10-15 minutes on 2 cores, 4 of them `wrangler kv bulk put`.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
# No devtools inspector and no local-dev observability collector: both cost CPU per request (bench/README.md).
export VSCODE_INSPECTOR_OPTIONS=1
export X_LOCAL_OBSERVABILITY="${KEYWARD_BENCH_LOCAL_OBSERVABILITY:-false}"

if [[ -f "$ROOT/scripts/setup.sh" && -z "${KEYWARD_BENCH_NO_SETUP:-}" ]]; then
  bash "$ROOT/scripts/setup.sh"
fi
for tool in python3 node wrangler; do
  command -v "$tool" >/dev/null || { echo "[admin-scale] missing tool: $tool" >&2; exit 1; }
done

# The Python script stops what it starts itself; this trap is the backstop if it is killed hard.
export KEYWARD_BENCH_PGID_FILE
KEYWARD_BENCH_PGID_FILE="$(mktemp /tmp/keyward-admin-scale-pgids.XXXXXX)"
cleanup() {
  local pgid
  while read -r pgid; do
    [[ -n "$pgid" ]] || continue
    if kill -0 -- "-$pgid" 2>/dev/null; then
      echo "[admin-scale] stopping leftover process group $pgid"
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
  echo "[admin-scale] $1: stopping"
  if [[ -n "$PY_PID" ]]; then kill -TERM "$PY_PID" 2>/dev/null || true; wait "$PY_PID" 2>/dev/null || true; fi
  exit 130
}
trap 'forward SIGINT' INT
trap 'forward SIGTERM' TERM
trap 'forward SIGHUP' HUP

python3 "$BENCH_DIR/admin_scale.py" "$@" &
PY_PID=$!
rc=0
wait "$PY_PID" || rc=$?
exit "$rc"
