#!/usr/bin/env bash
# wrangler's [build] command: worker-build, then drop the wasm names section.
# worker-build always runs wasm-opt with --debuginfo, which keeps function names (~28 KB gzip of
# a ~190 KB module); the deployed worker does not need them and smaller modules start faster.
# Set KEYWARD_KEEP_NAMES=1 to keep them (readable wasm stack traces while debugging).
# It also swaps worker-build's per-request Proxy'd entrypoint class for a plain { fetch } object
# (scripts/lean-entry.mjs says why); KEYWARD_PROXY_ENTRY=1 keeps worker-build's entry.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "${KEYWARD_PROXY_ENTRY:-}" = 1 ]; then
  worker-build --release
else
  NO_MINIFY=1 worker-build --release
  node scripts/lean-entry.mjs build/index.js
  # Minify only (no bundling: imports stay as they are).
  "${ESBUILD_BIN:-node_modules/.bin/esbuild}" build/index.js --minify --format=esm --log-level=warning \
    --allow-overwrite --outfile=build/index.js
fi
if [ "${KEYWARD_KEEP_NAMES:-}" != 1 ]; then
  wasm_opt="${WASM_OPT_BIN:-node_modules/.bin/wasm-opt}"
  # The same feature set worker-build enables, so nothing is re-encoded differently.
  "$wasm_opt" build/index_bg.wasm -o build/index_bg.wasm --strip-debug \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
    --enable-multivalue --enable-reference-types --enable-exception-handling
fi
echo "keyward: build/index_bg.wasm $(wc -c < build/index_bg.wasm) bytes, $(gzip -9 -c build/index_bg.wasm | wc -c) gzip"
