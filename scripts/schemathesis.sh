#!/usr/bin/env bash
# The API contract check: schemathesis fuzzes a running keyward against the OpenAPI document it
# serves (GET /openapi.json = docs/openapi.json), every operation, KEYWARD_ST_EXAMPLES examples each
# (default 50), as root, in one fresh workspace. Fails on any 5xx, any answer the document does not
# describe (status, content type, required headers, body schema), any request the document calls
# invalid that is accepted, a wrong method not answered 405 with Allow, auth that is ignored, a
# deleted key still reachable. Not checked: that every schema-valid request succeeds
# (positive_data_acceptance): names must be unique, times in the future, scopes in the
# deployment's catalog, which a schema cannot say.
#
# Usage: KEYWARD_ADMIN_TOKEN=<root token> scripts/schemathesis.sh http://127.0.0.1:8787 [st run options]
# The e2e suite runs it against its own wrangler dev (trial contract::schemathesis).
# Installs the pinned schemathesis (tests/schemathesis/requirements.txt) into .venv/schemathesis first
# (from PyPI; Python >= 3.10).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base="${1:?usage: KEYWARD_ADMIN_TOKEN=<root token> $0 BASE_URL [st run options]}"
shift
: "${KEYWARD_ADMIN_TOKEN:?set KEYWARD_ADMIN_TOKEN to the root token}"

venv=.venv/schemathesis
req=tests/schemathesis/requirements.txt
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$(cat "$venv/.keyward-stamp" 2>/dev/null)" != "$want" ]; then
  echo "schemathesis: installing $req into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" >"$venv/.keyward-stamp"
fi

export KEYWARD_ADMIN_TOKEN
export KEYWARD_ST_WORKSPACE="${KEYWARD_ST_WORKSPACE:-contract-$(date +%s)}"
export SCHEMATHESIS_HOOKS=tests/schemathesis/hooks.py
# Hypothesis keeps its files here rather than in the work tree.
export HYPOTHESIS_STORAGE_DIRECTORY="$venv/hypothesis"
exec "$venv/bin/st" --config-file tests/schemathesis/schemathesis.toml run "$base/openapi.json" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "${KEYWARD_ST_EXAMPLES:-50}" \
  --generation-database none --no-color "$@"
