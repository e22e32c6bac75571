#!/usr/bin/env bash
# keyward's own Rust work per cache-hit decision, timed natively (examples/hot_path.rs):
#   bench/core.sh [keys=1000] [iterations=1000000]
# The valid-key row of bench/run.sh includes the platform's entry into the wasm module and the
# forward; this isolates the decision, so the two together say where the time goes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source scripts/env.sh
keyward_locked cargo run --quiet --release --example hot_path -- "${1:-1000}" "${2:-1000000}"
