#!/usr/bin/env bash
# Tests of the origin verifiers in examples/origin-verify/ (JavaScript and Python) against the
# signature vectors that `cargo test` also checks (examples/origin-verify/vectors.json).
# Uses node from node_modules/.bin when present (scripts/setup.sh installs it), else the system's
# (18 or later). Prints each runner's summary; exits non-zero if either fails.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

node=node
[ -x node_modules/.bin/node ] && node=node_modules/.bin/node
status=0

echo "test-examples: node $("$node" --version) --test examples/origin-verify/verify.test.mjs"
out="$("$node" --test examples/origin-verify/verify.test.mjs 2>&1)" || status=1
[ "$status" -eq 0 ] || printf '%s\n' "$out"
printf '%s\n' "$out" | grep -E '^# (tests|pass|fail) '

echo "test-examples: python3 -m unittest discover -s examples/origin-verify"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s examples/origin-verify 2>&1 || status=1

if [ "$status" -eq 0 ]; then echo "test-examples: ok"; else echo "test-examples: FAILED"; fi
exit "$status"
