#!/usr/bin/env bash
# README command 2: unit tests of the pure core, then the end-to-end tests against wrangler dev.
# Takes the build lock (/tmp/keyward-build.lock) itself around each heavy step: do not run it under
# `flock` on that file (it would wait forever) unless you also export KEYWARD_BUILD_LOCK_HELD=1.
# Extra arguments go to the e2e test binary, e.g. `./scripts/test.sh gateway` to filter trials.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
. scripts/env.sh

echo "test: cargo test --lib"
keyward_locked cargo test --lib

echo "test: cargo test --test e2e"
keyward_locked cargo test --test e2e -- "$@"
