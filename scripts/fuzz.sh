#!/usr/bin/env bash
# Fuzz the pure core and the admin API (the fuzz/ crate, cargo-fuzz + libFuzzer on nightly).
#
#   ./scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 15 s, every target
#
# Installs what is missing first (the nightly toolchain, cargo-fuzz), builds every target, then runs
# each for SECONDS_PER_TARGET with the corpus fuzz/corpus/<target> (seeded here when absent) plus
# fuzz/regressions/<target> (committed inputs that once crashed, replayed first). Prints one line
# per target with libFuzzer's number of executions; libFuzzer's own output goes to
# fuzz/target/logs/<target>.log and only its tail is shown, on failure. Exits non-zero if any
# target crashed, timed out or failed to run; a crashing input is kept under fuzz/artifacts/<target>/.
# Takes the build lock (/tmp/keyward-build.lock) itself around each heavy step, like scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh

ALL_TARGETS=(key_parse scope_parse route_match rfc3339 admin_body problem_body)

secs="${1:-15}"
[ $# -gt 0 ] && shift
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]   (targets: ${ALL_TARGETS[*]})" >&2
  exit 2
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  if ! printf '%s\n' "${ALL_TARGETS[@]}" | grep -qx -- "$t"; then
    echo "fuzz: unknown target '$t' (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done

# --- what is missing, and nothing else ---------------------------------------------------------
fuzz_dir="$KEYWARD_ROOT/fuzz"
logs="$fuzz_dir/target/logs"
mkdir -p "$logs"

installing() { # installing WHAT LOG CMD...: run an install quietly, show its log's tail on failure
  local what="$1" log="$2"
  shift 2
  echo "fuzz: installing $what (log: ${log#"$KEYWARD_ROOT"/})"
  if ! keyward_locked "$@" >"$log" 2>&1; then
    tail -n 20 "$log"
    echo "fuzz: installing $what failed" >&2
    exit 1
  fi
}
if ! rustup toolchain list | grep -q '^nightly-'; then
  # --no-self-update: without it rustup also replaces its own binary in ~/.cargo/bin with the
  # dist server's "stable" rustup (here an older one: 1.29.0 -> 1.28.2, seen on this machine kind).
  installing "the nightly toolchain" "$logs/install-nightly.log" \
    rustup toolchain install nightly --profile minimal --no-self-update
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  # --locked works here (cargo-fuzz 0.13.2, 36-70 s on 2 cores): no fallback without it needed.
  installing cargo-fuzz "$logs/install-cargo-fuzz.log" cargo install cargo-fuzz --locked
fi

export CARGO_TARGET_DIR="$fuzz_dir/target"
# Release with debug assertions: overflow checks and debug_assert! catch more than plain release.
fuzz_flags=(--debug-assertions)

# --- seed corpora (only when a target has none yet) ---------------------------------------------
seed() { # seed TARGET NAME PRINTF-FORMAT [ARGS...]
  local dir="$fuzz_dir/corpus/$1" name="$2"
  shift 2
  # shellcheck disable=SC2059
  printf "$@" >"$dir/$name"
}

key0='kw_live_0000000000000000000000000000000000000000000_0AwA6B' # docs/key-format.md, 32 x 00
key1='kw_live_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf_0fcTwN' # 00 01 .. 1f
keyf='kw_live_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1_2y8VWB' # 32 x ff

make_seeds() {
  local t="$1"
  mkdir -p "$fuzz_dir/corpus/$t"
  case "$t" in
    key_parse)
      seed "$t" golden-zero '%s' "$key0"
      seed "$t" golden-counting '%s' "$key1"
      seed "$t" golden-ff '%s' "$keyf"
      seed "$t" bad-checksum '%s' "${key1%?}M"
      ;;
    scope_parse)
      seed "$t" sets '%s' 'projects:viewer events:write|projects:* deploy:trigger'
      seed "$t" wildcard '%s' '*|projects:executor keys:admin'
      seed "$t" ladder '%s' 'projects:admin deployments:editor agents:run|projects:discoverer deployments:*'
      ;;
    route_match)
      seed "$t" get '%s' 'GET /projects/42'
      seed "$t" head-deep '%s' 'HEAD /projects/42/files/a.txt'
      seed "$t" delete '%s' 'DELETE /projects/42'
      seed "$t" agents '%s' 'POST /agents/a1/run'
      seed "$t" echo '%s' 'PATCH /echo/anything/here'
      seed "$t" deployments '%s' 'GET /deployments'
      seed "$t" encoded '%s' 'GET /echo/%2e%2e/projects'
      ;;
    rfc3339)
      seed "$t" zulu '%s' '2026-11-23T10:00:00Z'
      seed "$t" offset-frac '%s' '2026-11-23T11:30:00.123+01:30'
      seed "$t" lower-leap '%s' '2000-02-29t00:00:00.5-02:00'
      seed "$t" first '%s' '0000-01-01T00:00:00Z'
      seed "$t" last '%s' '9999-12-31T23:59:59.999Z'
      ;;
    admin_body) # first byte: 0 create key, 1 edit key, 2 create preset, 3 verify
      seed "$t" create '0%s' '{"name":"ci deploy","description":"CI","scopes":["projects:viewer"],"expires":"90d","metadata":{"team":"a"}}'
      seed "$t" create-far '0%s' '{"name":"far","scopes":["*"],"expires":"9999-12-31T23:59:59Z","description":"a\tb"}'
      seed "$t" create-preset '0%s' '{"name":"sdk key","preset":"sdk","expires":"2030-01-01T00:00:00Z"}'
      seed "$t" edit '1%s' '{"name":"renamed","scopes":["projects:viewer","events:write"],"expires":null}'
      seed "$t" preset '2%s' '{"name":"ci-deploy","description":"deploys","scopes":["deploy:trigger","projects:viewer"]}'
      seed "$t" verify '3%s' "{\"key\":\"$key0\",\"scopes\":[\"projects:viewer\"]}"
      seed "$t" verify-other '3%s' "{\"key\":\"$keyf\",\"scopes\":[]}"
      ;;
    problem_body)
      seed "$t" name '%s\0%s\0%s' 'name' 'name must be 3 to 50 characters (got 2)' 'name: too short'
      seed "$t" scopes '%s\0%s\0%s\0%s\0%s' 'scopes' "scope 'x' is not of the form resource:permission" 'body' 'expires' 'must be in the future'
      ;;
  esac
}

# --- build every target once --------------------------------------------------------------------
echo "fuzz: building ${#ALL_TARGETS[@]} targets (cargo +nightly fuzz build; log: ${logs#"$KEYWARD_ROOT"/}/build.log)"
if ! (cd "$fuzz_dir" && keyward_locked cargo +nightly fuzz build "${fuzz_flags[@]}") >"$logs/build.log" 2>&1; then
  tail -n 40 "$logs/build.log"
  echo "fuzz: build failed" >&2
  exit 1
fi

# --- run ----------------------------------------------------------------------------------------
failed=0
for t in "${targets[@]}"; do
  [ -d "$fuzz_dir/corpus/$t" ] || make_seeds "$t"
  dirs=("$fuzz_dir/corpus/$t")
  [ -d "$fuzz_dir/regressions/$t" ] && dirs+=("$fuzz_dir/regressions/$t")
  log="$logs/$t.log"
  rc=0
  (cd "$fuzz_dir" && keyward_locked cargo +nightly fuzz run "${fuzz_flags[@]}" "$t" "${dirs[@]}" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1) >"$log" 2>&1 || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
  [ -n "$runs" ] || runs="$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -n 1)"
  took="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)"
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz: %-13s ok     %10s runs in %s s\n' "$t" "${runs:-?}" "${took:-$secs}"
  else
    failed=$((failed + 1))
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    printf 'fuzz: %-13s FAILED %10s runs (exit %s)\n' "$t" "${runs:-?}" "$rc"
    # The panic message (or sanitizer report) says what broke; the full output stays in the log.
    echo "----- ${log#"$KEYWARD_ROOT"/} (excerpt) -----"
    if grep -q 'panicked at' "$log"; then
      grep -A 4 -m 1 'panicked at' "$log"
    elif grep -q '^==[0-9]*==' "$log"; then
      grep -m 3 -E '^==[0-9]+==|^SUMMARY' "$log"
    else
      tail -n 15 "$log"
    fi
    echo "-----"
    if [ -n "$artifact" ]; then
      echo "fuzz: $t: input kept at ${artifact#"$KEYWARD_ROOT"/}; reproduce: (cd fuzz && cargo +nightly fuzz run ${fuzz_flags[*]} $t ${artifact#"$fuzz_dir"/})"
    fi
  fi
done

if [ "$failed" -gt 0 ]; then
  echo "fuzz: $failed of ${#targets[@]} targets failed" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
