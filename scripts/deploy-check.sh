#!/usr/bin/env bash
# `wrangler deploy --dry-run` for the default and the production environment: wrangler reads and
# validates the whole configuration (bindings, routes, vars, secrets list) and bundles the built
# worker, offline and without logging in. Fails on any error, and on any warning wrangler prints
# about the configuration (an unknown or misplaced field, a binding an environment does not
# repeat). The production block's REPLACE_... ids pass here; the real deploy refuses them.
# Takes the build lock around each run (the [build] command runs first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for env in default production; do
  args=(deploy --dry-run --outdir "$out/$env")
  # The default environment is named as "" (wrangler warns when a file has environments and none
  # is named).
  if [ "$env" = default ]; then args+=(--env ""); else args+=(--env "$env"); fi
  echo "deploy-check: wrangler ${args[*]}"
  if ! keyward_locked wrangler "${args[@]}" >"$out/$env.log" 2>&1; then
    cat "$out/$env.log"
    echo "deploy-check: the dry run for the $env environment failed" >&2
    exit 1
  fi
  if grep -q "WARNING" "$out/$env.log"; then
    cat "$out/$env.log"
    echo "deploy-check: wrangler warned about the $env environment's configuration" >&2
    exit 1
  fi
  grep -E "Total Upload|--dry-run: exiting now" "$out/$env.log" | sed "s/^/deploy-check: $env: /"
done
