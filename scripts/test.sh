#!/usr/bin/env bash
# README command 2: every test. In order: the native tests (core, every handler against in-memory
# stores, fault tables, interleavings, the store contract), the end-to-end tests against wrangler dev,
# the deploy dry runs (scripts/deploy-check.sh), the origin verifier examples (node, python), and a
# short fuzzing pass (KEYWARD_FUZZ_SECONDS per target, default 15; 0 skips it).
# Takes the build lock (/tmp/keyward-build.lock) itself around each heavy step: do not run it under
# `flock` on that file (it would wait forever) unless you also export KEYWARD_BUILD_LOCK_HELD=1.
# Extra arguments go to the e2e test binary, e.g. `./scripts/test.sh gateway` to filter trials.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
. scripts/env.sh

# Formatting (rustfmt.toml): helpers' branches have drifted before. The component ships with
# rustup's default profile; where it is missing it is added, and only if that fails is the check skipped.
if cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt >/dev/null 2>&1; then
  echo "test: cargo fmt --check"
  cargo fmt --check
else
  echo "test: cargo fmt --check SKIPPED: rustfmt is not installed and could not be added" >&2
fi

# --examples: bench/core.sh's example (examples/hot_path.rs) is built with the tests so it cannot rot.
echo "test: cargo test --lib --examples"
keyward_locked cargo test --lib --examples

echo "test: cargo test --test e2e"
keyward_locked cargo test --test e2e -- "$@"

echo "test: wrangler deploy --dry-run, default and production environments"
./scripts/deploy-check.sh

echo "test: origin verifier examples"
./scripts/test-examples.sh

fuzz_seconds="${KEYWARD_FUZZ_SECONDS:-15}"
if [ "$fuzz_seconds" != 0 ]; then
  echo "test: scripts/fuzz.sh $fuzz_seconds"
  ./scripts/fuzz.sh "$fuzz_seconds"
fi
