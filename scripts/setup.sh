#!/usr/bin/env bash
# Installs whatever is missing for building, running and testing keyward; does nothing else.
# Idempotent: safe to run before every dev/test command. Needs rustup, cargo, node and npm.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KEYWARD_ROOT"

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

for tool in rustup cargo npm flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH"
done

# 1. Rust target for the worker.
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rust target wasm32-unknown-unknown: present"
else
  say "rust target wasm32-unknown-unknown: adding"
  rustup target add wasm32-unknown-unknown
fi

# 2. worker-build, pinned (its own lockfile works: --locked).
WORKER_BUILD_VERSION=0.8.7
if worker-build --version 2>/dev/null | grep -qw "$WORKER_BUILD_VERSION"; then
  say "worker-build $WORKER_BUILD_VERSION: present"
else
  say "worker-build $WORKER_BUILD_VERSION: installing (several minutes)"
  keyward_locked cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

# 3. wasm-bindgen-cli, exactly the wasm-bindgen version in Cargo.lock. Without --locked: with it the
#    install fails on a prerelease of webpki-roots that its lockfile pins.
if [ ! -f Cargo.lock ]; then
  say "Cargo.lock missing: generating it"
  cargo generate-lockfile
fi
WASM_BINDGEN_VERSION="$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
[ -n "$WASM_BINDGEN_VERSION" ] || die "no wasm-bindgen package in Cargo.lock"
if wasm-bindgen --version 2>/dev/null | grep -qw "$WASM_BINDGEN_VERSION"; then
  say "wasm-bindgen-cli $WASM_BINDGEN_VERSION: present"
else
  say "wasm-bindgen-cli $WASM_BINDGEN_VERSION: installing (a few minutes)"
  keyward_locked cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# 4. Node tooling. `npm install`, not `npm ci`: the lockfile made here has no entries for workerd's
#    macOS/Windows optional packages and `npm ci` refuses it; `npm install` honours it unchanged.
#    A stamp of package.json + package-lock.json tells whether node_modules matches them.
STAMP=node_modules/.keyward-setup-stamp
npm_inputs_hash() { cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1; }
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(npm_inputs_hash)" ]; then
  say "node_modules: up to date with package-lock.json"
else
  say "node_modules: running npm install"
  npm install --no-audit --no-fund
  npm_inputs_hash >"$STAMP"
fi
for bin in node wrangler esbuild wasm-opt; do
  [ -x "node_modules/.bin/$bin" ] || die "node_modules/.bin/$bin missing after npm install"
done

# 5. Chromium for the admin page's browser test (tests/browser/, driven by playwright-core, which
#    downloads no browser): Debian's package. Needs root or password-less sudo.
if command -v chromium >/dev/null; then
  say "chromium: present"
else
  say "chromium: installing Debian's package"
  if [ "$(id -u)" = 0 ]; then as_root=(); elif sudo -n true 2>/dev/null; then as_root=(sudo -n); else
    die "chromium is missing and this user cannot install packages: apt-get install chromium as root"
  fi
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
  command -v chromium >/dev/null || die "chromium still missing after apt-get install"
fi

say "done"
