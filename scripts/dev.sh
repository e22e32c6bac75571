#!/usr/bin/env bash
# README command 1: run keyward locally with wrangler dev, in front of a demo origin that echoes requests.
#   gateway + admin API: http://127.0.0.1:8787    demo origin: http://127.0.0.1:8788
# Local state (KV, D1) lives in .wrangler/state and survives restarts; the admin token is in .dev.vars.
# Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
. scripts/env.sh

PORT="${KEYWARD_PORT:-8787}"
ORIGIN_PORT="${KEYWARD_ORIGIN_PORT:-8788}"
STATE=.wrangler/state
BASE="http://127.0.0.1:$PORT"

# Admin token: a random secret in .dev.vars (git-ignored), created once.
if [ ! -f .dev.vars ]; then
  (umask 077 && echo "ADMIN_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >.dev.vars)
  echo "dev: created .dev.vars with a new random ADMIN_TOKEN"
fi
ADMIN_TOKEN="$(sed -n 's/^ADMIN_TOKEN=//p' .dev.vars | tr -d '"' | head -n1)"
[ -n "$ADMIN_TOKEN" ] || { echo "dev: error: .dev.vars has no ADMIN_TOKEN=... line" >&2; exit 1; }

echo "dev: applying D1 migrations to $STATE"
wrangler d1 migrations apply DB --local --persist-to "$STATE"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

node scripts/demo-origin.mjs "$ORIGIN_PORT" &
PIDS+=($!)
sleep 0.3
kill -0 "${PIDS[0]}" 2>/dev/null || { echo "dev: error: the demo origin did not start (port $ORIGIN_PORT busy?)" >&2; exit 1; }

print_howto() {
  cat <<HOWTO

dev: keyward is ready on $BASE (origin: http://127.0.0.1:$ORIGIN_PORT). Try:
  export ADMIN_TOKEN=\$(sed -n 's/^ADMIN_TOKEN=//p' .dev.vars)    # the root token, kept in .dev.vars
  # 1. issue a key (the answer's "key" field is the only time you see the secret). Local state
  #    persists across runs; key names are unique per workspace, so this one carries the time.
  curl -X POST '$BASE/admin/v1/keys?workspace=demo' -H "authorization: Bearer \$ADMIN_TOKEN" -H 'content-type: application/json' -d '{"name":"first key $(date +%H%M%S)","preset":"sdk"}'
  # 2. call the gateway with it: the demo origin echoes what it received
  curl $BASE/projects/1 -H "authorization: Bearer <key>"
  # 3. or open the admin page and sign in with \$ADMIN_TOKEN and workspace demo
  #    $BASE/admin/

HOWTO
}
# Print the how-to once wrangler answers (its own output would bury it if printed first).
(
  for _ in $(seq 600); do
    if curl -s -o /dev/null "$BASE/"; then print_howto; exit 0; fi
    sleep 1
  done
) &
PIDS+=($!)

echo "dev: starting wrangler dev on $BASE (the first start compiles the worker)"
wrangler dev --ip 127.0.0.1 --port "$PORT" --persist-to "$STATE" \
  --var "ORIGIN_URL:http://127.0.0.1:$ORIGIN_PORT" --show-interactive-dev-session=false </dev/null
