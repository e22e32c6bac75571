# shellcheck shell=bash
# Environment for every keyward build, dev and test command. Without these variables worker-build
# downloads wasm-bindgen, esbuild and wasm-opt from GitHub, which this project never relies on.
# Source it:  . scripts/env.sh
# It only exports variables and defines keyward_locked; it does not change shell options.

KEYWARD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KEYWARD_ROOT

# Node 22, wrangler, esbuild and wasm-opt from node_modules first, then cargo-installed tools.
export PATH="$KEYWARD_ROOT/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# worker-build uses these instead of downloading the tools from GitHub (no internet here).
export WASM_BINDGEN_BIN="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen"
export ESBUILD_BIN="$KEYWARD_ROOT/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$KEYWARD_ROOT/node_modules/.bin/wasm-opt"
# wrangler: no telemetry, no prompts, no download of request.cf data at start-up.
export WRANGLER_SEND_METRICS=false
export CI="${CI:-true}"
export CLOUDFLARE_CF_FETCH_ENABLED=false

# Only one heavy build (Rust compile, wrangler dev) at a time on this machine.
export KEYWARD_BUILD_LOCK="${KEYWARD_BUILD_LOCK:-/tmp/keyward-build.lock}"

# keyward_locked CMD ARGS...: run an external command while holding the build lock.
# If the caller already holds the lock (KEYWARD_BUILD_LOCK_HELD=1, set for the command run under it),
# run the command directly: taking the lock again from a child would wait forever.
keyward_locked() {
  if [ "${KEYWARD_BUILD_LOCK_HELD:-}" = 1 ]; then
    "$@"
    return
  fi
  if ! flock -n "$KEYWARD_BUILD_LOCK" true; then
    echo "keyward: waiting for the build lock $KEYWARD_BUILD_LOCK (another build is running)..." >&2
  fi
  KEYWARD_BUILD_LOCK_HELD=1 flock "$KEYWARD_BUILD_LOCK" "$@"
}
