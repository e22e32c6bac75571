#!/usr/bin/env python3
"""keyward benchmark (stdlib only, Python 3.11). Run it through bench/run.sh, which sets the environment.

Side by side on the same pinned wrangler/workerd, in front of one local Node origin:
  passthrough      bench/passthrough: forwards to the origin, nothing else (the floor)
  passthrough-ratelimit  the same plus one Rate Limiting binding call per request (valid-ratelimited only)
  passthrough-credits    the same plus one Durable Object call per request, a counter like keyward's
                         credits (valid-metered only)
  passthrough-identity   the same plus the forward of a verified request: secret and client identity
                         headers dropped, identity headers and a request id set (valid only)
  js               bench/js-verifier: keyward's gateway job hand-written in JavaScript
  keyward          the Rust worker (wrangler.toml at the repo root), release build
  keyward-signed   the same with ORIGIN_SIGNING_SECRET set (X-Keyward-Signature on every forwarded request)
  keyward-nocache  the same with --var KEY_CACHE_TTL_S:0
  keyward-nofeed   the same with --var REVOCATION_FEED:off (the revocation feed's cost: valid key only)

Keys are created through keyward's admin API (this also measures key-creation throughput); the same
records are bulk-loaded into the JS worker's local KV. wrk (Lua script rotating through the keys)
drives each worker's own workerd socket (not wrangler's proxy port) at several connection counts,
systems interleaved, several rounds. CPU per request is the utime+stime delta of the workerd process
that serves the worker, read from /proc. Everything started here runs in its own process group and is
stopped by group id on exit, also on failure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import fcntl
import hashlib
import http.client
import json
import os
import secrets
import shutil
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import tomllib
import time
import zlib
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOCK_PATH = os.environ.get("KEYWARD_BUILD_LOCK") or "/tmp/keyward-build.lock"
# Set by scripts/env.sh's keyward_locked for a command already running under the lock: do not take it again.
LOCK_HELD = os.environ.get("KEYWARD_BUILD_LOCK_HELD") == "1"
_exclusive_lock = None  # --exclusive: the build lock, held by this process for the whole run


def lock_held() -> bool:
    return LOCK_HELD or _exclusive_lock is not None
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROBE_PATH = "/__keyward_bench_probe"
# keyward names each request in its answers (X-Request-Id, the problem's `instance`): a fixed ray id
# makes the probe's answer the same on wrangler's port and on the worker's own socket.
PROBE_HEADERS = {"cf-ray": "00000000000000b0-PROBE"}

SYSTEMS_ALL = ["passthrough", "passthrough-ratelimit", "passthrough-credits", "passthrough-identity", "js", "keyward",
               "keyward-signed", "keyward-nocache", "keyward-nofeed", "keyward-baseline"]
VERIFIERS = {"js", "keyward", "keyward-signed", "keyward-nocache", "keyward-nofeed", "keyward-baseline"}

# scenario -> (method, path, key file kind, expected status from a verifier)
SCENARIOS = {
    "valid": ("GET", "/projects/42", "valid", 200),
    # The same request with keys that carry a per-key rate limit (RL_TIER): keyward consults the tier's
    # Rate Limiting binding before forwarding. The JS verifier ignores the record's `rl` (it has no
    # rate limiting) and the passthrough ignores keys: both run it with their normal behaviour.
    "valid-ratelimited": ("GET", "/projects/42", "valid-rl", 200),
    # The same keys on a metered route (config/policy.json: `/metered/**`, cost 1, no scope): keyward makes
    # one call to the workspace's credit counter (a Durable Object) before forwarding. The bench workspace
    # is topped up far beyond what a run spends; a 402 or 503 aborts the run.
    "valid-metered": ("GET", "/metered/42", "valid", 200),
    "bad-checksum": ("GET", "/projects/42", "badsum", 401),
    "unknown-key": ("GET", "/projects/42", "unknown", 401),
    "insufficient-scope": ("POST", "/deploy", "valid", 403),
}
# Systems that run only some scenarios. Signing happens only on forwarded requests: on a refusal
# keyward-signed does exactly what keyward does, so it runs only where keyward forwards.
# passthrough-ratelimit is the floor of the rate-limited rows: what the binding costs by itself.
# passthrough-credits is the floor of the metered row: what the counter's round trip costs by itself.
# passthrough-identity is the floor of the valid-key row: what forwarding with identity costs by itself.
# The JS verifier has no credits and keyward-nocache adds nothing to the metered question: neither runs it.
SYSTEM_SCENARIOS = {
    "keyward-signed": {"valid", "valid-ratelimited"},
    "passthrough-ratelimit": {"valid-ratelimited"},
    "passthrough-credits": {"valid-metered"},
    "passthrough-identity": {"valid"},
    "keyward-nofeed": {"valid"},
    # --baseline DIR: another build of keyward (e.g. main's), run side by side with this tree's for an A/B.
    "keyward-baseline": {"valid", "bad-checksum", "unknown-key", "insufficient-scope"},
    "js": {"valid", "valid-ratelimited", "bad-checksum", "unknown-key", "insufficient-scope"},
    "keyward-nocache": {"valid", "valid-ratelimited", "bad-checksum", "unknown-key", "insufficient-scope"},
}
# Scenarios where the JS verifier does not do the same work as keyward (no rate limiting, no credits):
# no 'vs JS' ratio and no part in the verdict.
NOT_VS_JS = {"valid-ratelimited", "valid-metered"}
# Scenarios that must never see a refusal (they measure the check, not its refusals): status -> why.
NEVER = {"valid-ratelimited": {"429": "the per-key rate limit"},
         "valid-metered": {"402": "the end of the workspace's credits", "503": "an unreachable credit counter"}}
# Systems compared with the JS verifier (keyward-signed signs, which the JS verifier does not).
JS_COMPARABLE = {"keyward", "keyward-nocache"}
# The hot-path cost table: (scenario, system, label), each next to the plain valid-key row.
COST_ROWS = [
    ("valid", "passthrough-identity", "no key check, the same forward (secret dropped, identity headers set)"),
    ("valid", "keyward", "valid key"),
    ("valid-ratelimited", "passthrough-ratelimit", "no key check, the same rate-limit binding call"),
    ("valid-ratelimited", "keyward", "valid key with a rate limit"),
    ("valid", "keyward-signed", "valid key, signing on"),
    ("valid", "keyward-nofeed", "valid key, revocation feed off"),
    ("valid", "keyward-baseline", "valid key, the --baseline build"),
    ("valid-ratelimited", "keyward-signed", "valid key with a rate limit, signing on"),
    ("valid-metered", "passthrough-credits", "no key check, the same kind of Durable Object call"),
    ("valid-metered", "keyward", "valid key on a metered route (cost 1)"),
]
# The bench workspace's top-up before load (credits::MAX_AMOUNT, one top-up): a run spends a few hundred
# thousand at most.
METERED_FUNDING = 1_000_000_000
VALID_GOAL = 0.9  # valid-key req/s at least this fraction of the passthrough's (issue #12)
P99_GOAL = 1.25  # valid-key p99 at most this multiple of the passthrough's (issue #15)

# The per-key tier of the valid-ratelimited keys: one of config/policy.json's "ratelimits" (binding
# RL_KEY_1000_60). The bench must never reach it (a 429 would measure refusals): enough keys are
# rotated that a key sees at most RL_HEADROOM of the limit per window even at RL_ASSUMED_MAX_RPS
# (about 3x the fastest valid-key rate seen here), and any 429 in that scenario aborts the run.
RL_TIER = {"limit": 1000, "period": 60}
RL_ASSUMED_MAX_RPS = 5000
RL_HEADROOM = 0.5
# A second, tiny tier used once per keyward instance by the sanity check, to see the limit enforced.
RL_PROBE_TIER = {"limit": 10, "period": 10}

# ---------------------------------------------------------------------------------------------------
# key format (same as keyward's and bench/js-verifier's)

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PREFIX = "kw_live_"


def b62(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    s = "".join(reversed(out)).rjust(width, "0")
    assert len(s) == width
    return s


def make_key() -> str:
    body = PREFIX + b62(int.from_bytes(secrets.token_bytes(32), "big"), 43)
    return body + "_" + b62(zlib.crc32(body.encode("ascii")), 6)


def break_checksum(key: str) -> str:
    last = key[-1]
    return key[:-1] + ALPHABET[(ALPHABET.index(last) + 1) % 62]


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


# ---------------------------------------------------------------------------------------------------
# logging and process management


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


class Procs:
    """Process groups started by this run; stopped by group id, also on failure."""

    def __init__(self, pgid_file: Path):
        self.groups: list[tuple[str, subprocess.Popen]] = []
        self.pgid_file = pgid_file

    def start(self, name: str, argv: list[str], cwd: Path, logfile: Path, env=None) -> subprocess.Popen:
        out = open(logfile, "ab")
        p = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env,
        )
        out.close()
        self.groups.append((name, p))
        with open(self.pgid_file, "a") as f:  # bench/run.sh's trap reads this if Python dies hard
            f.write(f"{p.pid}\n")
        return p

    def stop(self, p: subprocess.Popen, name: str, grace: float = 15.0) -> None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if p.poll() is not None and not group_members(p.pid):
                return
            time.sleep(0.1)
        log(f"{name}: still running {grace:.0f}s after SIGTERM, sending SIGKILL to group {p.pid}")
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self) -> None:
        while self.groups:
            name, p = self.groups.pop()
            self.stop(p, name)


def group_members(pgid: int) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:  # fields[0] = state, [1] = ppid, [2] = pgrp
            pids.append(int(d))
    return pids


def proc_comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_ticks(pid: int) -> int:
    st = Path(f"/proc/{pid}/stat").read_text()
    fields = st[st.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)


def listening_ports(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    # 0A = LISTEN
    return {port for state, port, inode in tcp_sockets() if state == "0A" and inode in inodes}


def tcp_sockets():
    """(state, local port, inode) for every IPv4/IPv6 TCP socket in /proc/net."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            yield f[3], int(f[1].rsplit(":", 1)[1], 16), f[9]


def established_to(port: int) -> int:
    """Established TCP connections whose local port is `port` (e.g. a debugger attached)."""
    n = 0
    for state, local, _ in tcp_sockets():
        if state == "01" and local == port:  # 01 = ESTABLISHED
            n += 1
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(port: int, method: str, path: str, headers=None, body=None, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------------
# systems


class System:
    def __init__(self, name: str, cwd: Path, vars_: dict[str, str], state: Path, config: Path | None = None):
        self.name = name
        self.cwd = cwd
        self.vars = vars_
        self.state = state
        self.config = config  # wrangler config; None = cwd's wrangler.toml
        self.proc: subprocess.Popen | None = None
        self.wrangler_port = 0
        self.port = 0  # the user worker's own workerd socket
        self.workerd_pid = 0
        self.proxy_pid = 0
        self.first_response_s = None
        self.keys: dict[str, Path] = {}
        self.records: list[dict] = []
        self.rl_records: list[dict] = []  # keys with RL_TIER (the valid-ratelimited scenario)
        self.rl_probe: dict | None = None  # one key with RL_PROBE_TIER (keyward only: sanity check)
        self.signing_secret = ""  # ORIGIN_SIGNING_SECRET when set (keyward-signed)
        self.unfunded_probe: dict | None = None  # a key of a workspace without credits (keyward: sanity check)
        self.metered_forwarded = 0  # metered requests answered 200 (sanity check, priming and measured runs)
        self.metered_cut = 0  # bound on metered requests spent but cut off unanswered when a wrk run ends
        self.reloads = 0

    def argv(self) -> list[str]:
        a = ["wrangler", "dev", "--ip", "127.0.0.1", "--port", str(self.wrangler_port),
             "--persist-to", str(self.state), "--show-interactive-dev-session=false"]
        if self.config:
            a += ["-c", str(self.config)]
        for k, v in self.vars.items():
            a += ["--var", f"{k}:{v}"]
        return a


def wrangler(args: list[str], cwd: Path, logfile: Path, timeout: float = 180) -> None:
    with open(logfile, "ab") as out:
        out.write(f"\n$ wrangler {' '.join(args)}\n".encode())
        out.flush()
        r = subprocess.run(["wrangler", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=timeout, start_new_session=True)
    if r.returncode != 0:
        raise BenchError(f"`wrangler {' '.join(args)}` failed (exit {r.returncode}); see {logfile}")


def start_system(procs: Procs, s: System, raw: Path, deadline_s: float) -> None:
    s.wrangler_port = free_port()
    logfile = raw / f"wrangler-{s.name}.log"
    t0 = time.monotonic()
    s.proc = procs.start(s.name, s.argv(), s.cwd, logfile)
    while True:
        if s.proc.poll() is not None:
            raise BenchError(f"{s.name}: wrangler dev exited with {s.proc.returncode} before answering; "
                             f"see {logfile}:\n{tail(logfile)}")
        if time.monotonic() - t0 > deadline_s:
            raise BenchError(f"{s.name}: no response on port {s.wrangler_port} after {deadline_s:.0f}s; "
                             f"see {logfile}:\n{tail(logfile)}")
        try:
            http_request(s.wrangler_port, "GET", PROBE_PATH, timeout=2)
            break
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)
    s.first_response_s = time.monotonic() - t0
    locate_workerd(s)
    log(f"{s.name}: first response after {s.first_response_s:.2f}s; wrangler port {s.wrangler_port}, "
        f"worker's own workerd socket 127.0.0.1:{s.port} (workerd pid {s.workerd_pid})")


def try_flock(f) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class BuildLock:
    """The shared build lock (/tmp/keyward-build.lock), unless this process or its caller holds it."""

    def __enter__(self):
        self.f = None
        if not lock_held():
            self.f = open(LOCK_PATH, "a")
            if not try_flock(self.f):
                log(f"waiting for {LOCK_PATH} (another build is running)")
                fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.f:
            self.f.close()


def build_keyward(raw: Path, snapshot: Path, labels: list[str]) -> dict:
    """The project's build (scripts/build.sh, wrangler.toml's [build] command) under the build lock, then a
    private copy of build/ taken under the same lock.

    The benchmarked keyward instances run that copy through a generated wrangler config without a
    [build] step: wrangler dev would otherwise rebuild at each start and whenever src/ changes (the
    project's own dev sessions and tests edit and build the same tree), and restart the worker mid-run.
    """
    times = {}
    with BuildLock():
        for label in labels:
            log(f"building keyward ({label}): scripts/build.sh under {LOCK_PATH}")
            t = time.monotonic()
            with open(raw / "build.log", "ab") as f:
                r = subprocess.run([str(ROOT / "scripts" / "build.sh")], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=f,
                                   stderr=subprocess.STDOUT, timeout=1800)
            if r.returncode != 0:
                raise BenchError(f"keyward release build failed (exit {r.returncode}); see {raw / 'build.log'}:\n"
                                 f"{tail(raw / 'build.log', 30)}")
            times[label + "_s"] = round(time.monotonic() - t, 2)
        src = ROOT / "build"
        if not (src / "worker" / "shim.mjs").is_file():
            raise BenchError(f"{src}/worker/shim.mjs missing: build keyward first (or drop --no-build)")
        shutil.copytree(src, snapshot, ignore=shutil.ignore_patterns(".tmp"))
    wasm = sorted(snapshot.glob("*.wasm"))
    if wasm:
        times["wasm_bytes"] = wasm[0].stat().st_size
    return times


def keyward_config(snapshot: Path, name: str, dest: Path) -> Path:
    """The repo's wrangler.toml as JSON, pointed at the build snapshot, without [build], paths absolute."""
    cfg = tomllib.loads((ROOT / "wrangler.toml").read_text())
    cfg.pop("build", None)
    cfg["name"] = name
    cfg["main"] = str(snapshot / Path(cfg.get("main", "build/worker/shim.mjs")).relative_to("build"))
    for db in cfg.get("d1_databases", []):
        if "migrations_dir" in db:
            db["migrations_dir"] = str(ROOT / db["migrations_dir"])
    dest.write_text(json.dumps(cfg, indent=2))
    return dest


def passthrough_ratelimit_config(dest: Path) -> Path:
    """bench/passthrough's wrangler.toml for ratelimited.js, with a Rate Limiting binding of RL_TIER."""
    cfg = tomllib.loads((BENCH / "passthrough" / "wrangler.toml").read_text())
    cfg["name"] = "keyward-bench-passthrough-ratelimit"
    cfg["main"] = str(BENCH / "passthrough" / "ratelimited.js")
    cfg["ratelimits"] = [{"name": "RL", "namespace_id": "2001",
                          "simple": {"limit": RL_TIER["limit"], "period": RL_TIER["period"]}}]
    dest.write_text(json.dumps(cfg, indent=2))
    return dest


def forward_drop_rules(js: str) -> tuple[list[str], list[str]]:
    """The header names and prefixes a forward drops, read from its JS source (the DROP set and the
    startsWith prefixes of dropped())."""
    names = re.search(r"const DROP = new Set\(\[(.*?)\]\)", js, re.S)
    body = re.search(r"function dropped\(k\) \{(.*?)\n\}", js, re.S)
    if not names or not body:
        raise BenchError("forward_drop_rules: no DROP set or dropped() in the source")
    quoted = r"""['"]([^'"]+)['"]"""
    return (sorted(re.findall(quoted, names.group(1))),
            sorted(re.findall(r"startsWith\(" + quoted + r"\)", body.group(1))))


def passthrough_identity_config(dest: Path) -> Path:
    """bench/passthrough's wrangler.toml for identity.js (no bindings).

    identity.js repeats keyward's list of dropped headers (kw_forward's lives in a Rust string in
    src/wasm/js.rs, which a worker cannot import): a floor that dropped other headers would measure
    other work, so the two lists must be the same."""
    mine = forward_drop_rules((BENCH / "passthrough" / "identity.js").read_text())
    keyward = forward_drop_rules((ROOT / "src" / "wasm" / "js.rs").read_text())
    if mine != keyward:
        raise BenchError(f"bench/passthrough/identity.js drops {mine}, keyward's forward {keyward}: make them the same")
    cfg = tomllib.loads((BENCH / "passthrough" / "wrangler.toml").read_text())
    cfg["name"] = "keyward-bench-passthrough-identity"
    cfg["main"] = str(BENCH / "passthrough" / "identity.js")
    dest.write_text(json.dumps(cfg, indent=2))
    return dest


def passthrough_credits_config(dest: Path) -> Path:
    """bench/passthrough's wrangler.toml for metered.js, with its Durable Object binding and class migration."""
    cfg = tomllib.loads((BENCH / "passthrough" / "wrangler.toml").read_text())
    cfg["name"] = "keyward-bench-passthrough-credits"
    cfg["main"] = str(BENCH / "passthrough" / "metered.js")
    cfg["durable_objects"] = {"bindings": [{"name": "COUNTER", "class_name": "Counter"}]}
    cfg["migrations"] = [{"tag": "v1", "new_sqlite_classes": ["Counter"]}]
    dest.write_text(json.dumps(cfg, indent=2))
    return dest


def tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def locate_workerd(s: System) -> None:
    """Find the workerd process that runs the user worker and the port it listens on.

    wrangler dev = node (wrangler) + two workerd processes: the proxy's, listening on wrangler's
    --port, and the user worker's, listening on an ephemeral "entry" socket plus the inspector and
    debug ports. Each listening port of the non-proxy workerd is probed with the same request as
    wrangler's port; the one that answers identically is the worker's own socket.
    """
    want = http_request(s.wrangler_port, "GET", PROBE_PATH, PROBE_HEADERS)
    want = (want[0], want[2])
    proxy, candidates = 0, []
    for _ in range(50):
        pids = [p for p in group_members(s.proc.pid) if proc_comm(p) == "workerd"]
        candidates = []
        for pid in pids:
            ports = listening_ports(pid)
            if s.wrangler_port in ports:
                proxy = pid
            else:
                candidates.append((pid, sorted(ports)))
        if proxy and candidates:
            break
        time.sleep(0.1)
    for pid, ports in candidates:
        for port in ports:
            try:
                got = http_request(port, "GET", PROBE_PATH, PROBE_HEADERS, timeout=1.5)
            except (OSError, http.client.HTTPException):
                continue
            if (got[0], got[2]) == want:
                s.port, s.workerd_pid, s.proxy_pid = port, pid, proxy
                others = [p for p in ports if p != port]
                attached = sum(established_to(p) for p in others)
                if attached:
                    log(f"WARNING {s.name}: {attached} connection(s) to the worker's inspector/debug ports "
                        f"{others}; is VSCODE_INSPECTOR_OPTIONS=1 set? CPU numbers include the inspector.")
                return
    raise BenchError(f"{s.name}: could not find the worker's own workerd socket (workerd processes and "
                     f"listening ports: proxy={proxy}, others={candidates}); see raw/wrangler-{s.name}.log")


# ---------------------------------------------------------------------------------------------------
# seeding


def seed_keyward(s: System, admin_token: str, n: int, concurrency: int, ratelimit: dict | None = None,
                 tag: str = "", workspace: str = "bench") -> tuple[dict, list[dict]]:
    """Create n keys (preset sdk, with `ratelimit` if given) through the admin API; returns creation stats
    and the records ({key, obj})."""
    path = f"/admin/v1/keys?workspace={workspace}"
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    prefix = f"bench-{s.name}{tag}-{secrets.token_hex(3)}"
    extra = {"ratelimit": ratelimit} if ratelimit else {}

    def worker(indices):
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        out = []
        try:
            for i in indices:
                body = json.dumps({"name": f"{prefix}-{i:05d}", "preset": "sdk", **extra})
                t = time.perf_counter()
                conn.request("POST", path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                lat = time.perf_counter() - t
                if r.status != 201:
                    raise BenchError(f"{s.name}: POST {path} answered {r.status}: {data[:400]!r}")
                out.append((lat, json.loads(data)))
        finally:
            conn.close()
        return out

    chunks = [list(range(i, n, concurrency)) for i in range(concurrency)]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
        results = [r for chunk in ex.map(worker, chunks) for r in chunk]
    elapsed = time.perf_counter() - t0
    lats = sorted(r[0] for r in results)
    records = []
    for _, obj in results:
        key = obj.get("key")
        if not isinstance(key, str) or len(key) != 58:
            raise BenchError(f"{s.name}: create answer has no 58-char `key`: {json.dumps(obj)[:400]}")
        if ratelimit and obj.get("ratelimit") != ratelimit:
            raise BenchError(f"{s.name}: created key shows ratelimit {obj.get('ratelimit')!r}, want {ratelimit!r}")
        records.append({"key": key, "obj": obj})
    return {
        "keys": n, "concurrency": concurrency, "seconds": round(elapsed, 3),
        "keys_per_s": round(n / elapsed, 1),
        "p50_ms": round(pct(lats, 50) * 1000, 2), "p99_ms": round(pct(lats, 99) * 1000, 2),
    }, records


def rfc3339_to_ms(v):
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return int(v)
    return int(dt.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000)


def kv_record(obj: dict) -> dict:
    """The KV value keyward writes for a key, rebuilt from the admin API's key object."""
    rec = {
        "v": 1, "id": obj["id"], "workspace": obj.get("workspace", "bench"), "name": obj["name"],
        "scopes": obj["scopes"], "expires_at": rfc3339_to_ms(obj.get("expires_at")),
        "status": obj.get("status", "active"), "preview": obj.get("preview", ""),
        "meta": obj.get("metadata", {}) or {},
    }
    # Written by keyward only when not the default (live keys, no rate limit), so the same here.
    if obj.get("environment", "live") != "live":
        rec["env"] = obj["environment"]
    if obj.get("ratelimit"):
        rec["rl"] = obj["ratelimit"]
    return rec


def local_records(n: int, ratelimit: dict | None = None) -> list[dict]:
    """Keys made here when keyward is not part of the run (JS-only runs)."""
    out = []
    for i in range(n):
        key = make_key()
        out.append({"key": key, "obj": {
            "id": "key_" + secrets.token_hex(8), "workspace": "bench", "name": f"bench-local-{i:05d}",
            "scopes": ["events:write", "projects:viewer"], "expires_at": None, "status": "active",
            "preview": key[:8] + "..." + key[-4:], "metadata": {}, "environment": "live",
            "ratelimit": ratelimit}})
    return out


def write_key_files(s: System, raw: Path, unknown: Path) -> None:
    valid = raw / f"keys-{s.name}-valid.txt"
    valid_rl = raw / f"keys-{s.name}-valid-rl.txt"
    bad = raw / f"keys-{s.name}-badsum.txt"
    valid.write_text("".join(r["key"] + "\n" for r in s.records))
    valid_rl.write_text("".join(r["key"] + "\n" for r in s.rl_records))
    bad.write_text("".join(break_checksum(r["key"]) + "\n" for r in s.records))
    s.keys = {"valid": valid, "valid-rl": valid_rl, "badsum": bad, "unknown": unknown}


# ---------------------------------------------------------------------------------------------------
# sanity checks (curl)


def curl(port: int, method: str, path: str, headers: dict[str, str], tmp: Path):
    hfile, bfile = tmp / "curl-headers.txt", tmp / "curl-body.txt"
    argv = ["curl", "-sS", "-m", "10", "-X", method, "-o", str(bfile), "-D", str(hfile), "-w", "%{http_code}"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    if method == "POST":
        argv += ["--data-binary", ""]
    argv.append(f"http://127.0.0.1:{port}{path}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    status = int(r.stdout.strip() or 0)
    hdrs = {}
    for line in hfile.read_text(errors="replace").splitlines()[1:] if hfile.exists() else []:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, bfile.read_bytes() if bfile.exists() else b""


def origin_verifier():
    """The project's own origin verifier (examples/origin-verify/verify.py, tested by scripts/test.sh), so
    this check follows docs/origin-signing.md as the project defines it. Loaded without writing bytecode."""
    path = ROOT / "examples" / "origin-verify" / "verify.py"
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    return ns["verify"]


def signature_problem(secret: str, value: str | None, method: str, target: str, eh: dict) -> str | None:
    """None if `value` is a valid X-Keyward-Signature for what the origin received (docs/origin-signing.md)."""
    if not value:
        return "no X-Keyward-Signature at the origin"
    if not origin_verifier()(eh, method, target, secret, time.time()):
        return (f"X-Keyward-Signature {value[:20]}... does not verify (examples/origin-verify/verify.py) with the "
                "secret keyward-signed was started with")
    return None


def forwarded_check(s: System, label: str, rec: dict, tmp: Path, path: str = "/projects/42") -> list[str]:
    """GET `path` with rec's key -> 200 from the origin; for verifiers, what the origin received:
    no Authorization, keyward's identity headers (spoofed ones replaced), and X-Keyward-Signature exactly
    when the system signs."""
    problems = []
    spoof = {"X-Keyward-Key-Id": "spoofed", "X-Keyward-Workspace": "spoofed", "X-Keyward-Signature": "t=1,v1=00"}
    target = f"{path}?echo=1"
    st, h, body = curl(s.port, "GET", target, {"Authorization": f"Bearer {rec['key']}", **spoof}, tmp)
    if st != 200:
        return [f"{label} GET {path} -> {st} (want 200): {body[:300]!r}"]
    try:
        echo = json.loads(body)
    except ValueError:
        echo = None
    if not echo or echo.get("url") != target:
        return [f"{label}: answer is not the origin's echo: {body[:300]!r}"]
    eh = echo["headers"]
    if s.name == "passthrough-identity":
        # The floor must do the forward's work, or its ratio measures less than keyward does.
        if "authorization" in eh or eh.get("x-keyward-key-id") == "spoofed" or "x-keyward-signature" in eh:
            problems.append(f"{label}: the forward floor passed the secret or a spoofed identity on: {eh!r}")
        if not eh.get("x-request-id") or not eh.get("x-keyward-scopes"):
            problems.append(f"{label}: the forward floor set no identity or request id: {eh!r}")
    if s.name not in VERIFIERS:
        return problems
    if "authorization" in eh:
        problems.append(f"{label}: Authorization was forwarded to the origin")
    if eh.get("x-keyward-key-id") != rec["obj"]["id"]:
        problems.append(f"{label}: origin saw X-Keyward-Key-Id {eh.get('x-keyward-key-id')!r}, "
                        f"want {rec['obj']['id']!r}")
    if eh.get("x-keyward-workspace") != "bench":
        problems.append(f"{label}: origin saw X-Keyward-Workspace {eh.get('x-keyward-workspace')!r}")
    if "projects:viewer" not in (eh.get("x-keyward-scopes") or "").split():
        problems.append(f"{label}: origin saw X-Keyward-Scopes {eh.get('x-keyward-scopes')!r}")
    sig = eh.get("x-keyward-signature")
    if s.signing_secret:
        p = signature_problem(s.signing_secret, sig, "GET", target, eh)
        if p:
            problems.append(f"{label}: {p}")
    elif sig is not None:
        problems.append(f"{label}: origin saw X-Keyward-Signature {sig!r} from a system that does not sign")
    return problems


def ratelimit_enforced(s: System) -> list[str]:
    """The rate-limit path is live: a key with RL_PROBE_TIER gets 429 (Retry-After) once over its limit.
    Local windows are aligned to the clock, so 2 * limit + 1 requests see the limit passed in one of at
    most two windows."""
    if not s.rl_probe:
        return []
    headers = {"Authorization": f"Bearer {s.rl_probe['key']}"}
    seen = []
    for _ in range(2 * RL_PROBE_TIER["limit"] + 1):
        st, h, _ = http_request(s.port, "GET", "/projects/42", headers)
        seen.append(st)
        if st == 429:
            if not h.get("retry-after"):
                return ["rate limit: 429 without Retry-After"]
            return []
        if st != 200:
            break
    return [f"rate limit: a key limited to {RL_PROBE_TIER['limit']} per {RL_PROBE_TIER['period']}s was never "
            f"refused (statuses {seen})"]


def admin_json(s: System, admin_token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    st, _, raw_body = http_request(s.port, method, path, headers, data, timeout=30)
    try:
        return st, json.loads(raw_body or b"{}")
    except ValueError:
        return st, {"raw": raw_body[:300].decode(errors="replace")}


def credits_spent(s: System, admin_token: str, workspace: str = "bench") -> int:
    st, v = admin_json(s, admin_token, "GET", f"/admin/v1/credits?workspace={workspace}")
    if st != 200 or not isinstance(v.get("spent"), int):
        raise BenchError(f"{s.name}: GET /admin/v1/credits answered {st}: {json.dumps(v)[:300]}")
    return v["spent"]


def fund_workspace(s: System, admin_token: str) -> None:
    """Tops up the bench workspace (once per instance; the top-up id makes a repeat add nothing)."""
    st, v = admin_json(s, admin_token, "POST", "/admin/v1/credits?workspace=bench",
                       {"amount": METERED_FUNDING, "id": "bench-funding"})
    if st not in (200, 201) or v.get("balance", 0) < METERED_FUNDING // 2:
        raise BenchError(f"{s.name}: top-up answered {st}: {json.dumps(v)[:300]}")


def metered_check(s: System, tmp: Path, admin_token: str) -> list[str]:
    """The metered route forwards and spends: a valid key -> 200 from the origin (what it received checked
    as on the plain route) and, on keyward, exactly one credit spent; a key of a workspace without credits
    -> 402 credits-exhausted."""
    keyward = s.name.startswith("keyward")
    before = credits_spent(s, admin_token) if keyward else 0
    problems = forwarded_check(s, "valid key, metered route", s.records[0], tmp, "/metered/42")
    if problems or not keyward:
        return problems
    s.metered_forwarded += 1
    spent = credits_spent(s, admin_token) - before
    if spent != 1:
        problems.append(f"metered route: one forwarded request spent {spent} credits (want 1)")
    if s.unfunded_probe:
        st, h, body = curl(s.port, "GET", "/metered/42", {"Authorization": f"Bearer {s.unfunded_probe['key']}"}, tmp)
        try:
            kind = json.loads(body).get("type")
        except ValueError:
            kind = None
        if st != 402 or kind != "urn:keyward:problem:credits-exhausted":
            problems.append(f"metered route, workspace without credits: {st} {body[:200]!r} (want 402 "
                            "credits-exhausted)")
    return problems


def sanity_check(s: System, tmp: Path, metered: bool = False, admin_token: str = "") -> list[str]:
    rec = s.records[0]
    key = rec["key"]
    # valid -> 200 from the origin (echo shows what was forwarded); the same for a rate-limited key
    problems = forwarded_check(s, "valid key", rec, tmp)
    if s.rl_records:
        problems += forwarded_check(s, "valid rate-limited key", s.rl_records[0], tmp)
    if metered:
        problems += metered_check(s, tmp, admin_token)
    if s.name not in VERIFIERS:
        return problems
    problems += ratelimit_enforced(s)
    cases = [
        ("bad checksum", "GET", "/projects/42", break_checksum(key), 401, 'error="invalid_token"'),
        ("unknown key", "GET", "/projects/42", make_key(), 401, 'error="invalid_token"'),
        ("insufficient scope", "POST", "/deploy", key, 403, 'error="insufficient_scope"'),
    ]
    for label, method, path, k, want, auth_part in cases:
        st, h, body = curl(s.port, method, path, {"Authorization": f"Bearer {k}"}, tmp)
        if st != want:
            problems.append(f"{label}: {method} {path} -> {st} (want {want}): {body[:300]!r}")
            continue
        if auth_part not in h.get("www-authenticate", ""):
            problems.append(f"{label}: WWW-Authenticate {h.get('www-authenticate')!r} lacks {auth_part}")
        if not h.get("content-type", "").startswith("application/problem+json"):
            problems.append(f"{label}: Content-Type {h.get('content-type')!r}, want application/problem+json")
    return problems


# ---------------------------------------------------------------------------------------------------
# load


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    k = (len(sorted_vals) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(sorted_vals) - 1)
    return sorted_vals[f] + (sorted_vals[c] - sorted_vals[f]) * (k - f)


def run_wrk(port: int, conns: int, duration: float, keys: Path, method: str, path: str, out: Path) -> dict:
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{int(duration)}s", "--timeout", "5s",
            "-s", str(BENCH / "wrk" / "rotate.lua"), f"http://127.0.0.1:{port}{path}",
            "--", str(keys), method, path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    out.write_text(" ".join(argv) + "\n" + r.stdout + r.stderr)
    for line in r.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise BenchError(f"wrk printed no result (exit {r.returncode}): {r.stdout[-500:]} {r.stderr[-500:]}")


def host_busy_ticks() -> int:
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(f[:8]) - f[3] - f[4]  # all but idle and iowait (guest time is already in user)


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Vanished(Exception):
    """A measured process exited (wrangler restarted the worker): the run is void."""


def measure(s_port: int, cpu_pids: dict[str, int], conns, duration, keys, method, path, out) -> dict:
    try:
        return _measure(s_port, cpu_pids, conns, duration, keys, method, path, out)
    except FileNotFoundError as e:
        raise Vanished(str(e)) from e


def _measure(s_port: int, cpu_pids: dict[str, int], conns, duration, keys, method, path, out) -> dict:
    before = {k: cpu_ticks(p) for k, p in cpu_pids.items()}
    host0, wrk0 = host_busy_ticks(), children_cpu_s()
    t0 = time.monotonic()
    w = run_wrk(s_port, conns, duration, keys, method, path, out)
    wall = time.monotonic() - t0
    host1, wrk1 = host_busy_ticks(), children_cpu_s()
    after = {k: cpu_ticks(p) for k, p in cpu_pids.items()}
    w["cpu_s"] = {k: (after[k] - before[k]) / CLK_TCK for k in cpu_pids}
    w["cpu_s"]["wrk"] = round(wrk1 - wrk0, 3)
    w["cpu_s"]["host_busy"] = (host1 - host0) / CLK_TCK
    # CPU burnt by anything else on the machine (other builds, tests): noise indicator
    w["cpu_s"]["foreign"] = round(max(0.0, w["cpu_s"]["host_busy"] - sum(
        v for k, v in w["cpu_s"].items() if k not in ("host_busy",))), 3)
    w["wall_s"] = wall
    return w


def origin_alone(origin_port: int, origin_pid: int, duration: float, raw: Path, unknown: Path) -> dict:
    res = {}
    for conns in (8, 32):
        w = measure(origin_port, {"origin": origin_pid}, conns, duration, unknown, "GET", "/projects/42",
                    raw / f"wrk-origin-alone-c{conns}.txt")
        rps = w["requests"] / (w["duration_us"] / 1e6)
        res[f"c{conns}"] = {"rps": round(rps, 1), "p50_ms": w["latency_us"]["p50"] / 1000,
                            "p99_ms": w["latency_us"]["p99"] / 1000,
                            "cpu_us_per_req": round(w["cpu_s"]["origin"] * 1e6 / max(w["requests"], 1), 1),
                            "statuses": w["statuses"]}
    return res


# ---------------------------------------------------------------------------------------------------
# report


def fmt(v, nd=0):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def rps_of(r: dict) -> float:
    return r["requests"] / (r["duration_us"] / 1e6)


def cpu_of(r: dict) -> float:
    """The worker's CPU per request in one run, us."""
    return r["cpu_s"]["workerd"] * 1e6 / r["requests"] if r["requests"] else 0.0


def aggregate(runs: list[dict], systems: list[str], conns_list, scenarios) -> dict:
    cells = {}
    for sc in scenarios:
        for c in conns_list:
            for sy in systems:
                rs = [r for r in runs if r["scenario"] == sc and r["conns"] == c and r["system"] == sy]
                if not rs:
                    continue
                reqs = sum(r["requests"] for r in rs)
                cpu = sum(r["cpu_s"]["workerd"] for r in rs)
                statuses: dict[str, int] = {}
                for r in rs:
                    for k, v in r["statuses"].items():
                        statuses[k] = statuses.get(k, 0) + v
                errs = sum(sum(r["errors"][k] for k in ("connect", "read", "write", "timeout")) for r in rs)
                expected = str(rs[0]["expected_status"])
                cells[(sc, c, sy)] = {
                    "scenario": sc, "conns": c, "system": sy, "rounds": len(rs),
                    "rps": statistics.median(r["requests"] / (r["duration_us"] / 1e6) for r in rs),
                    "rps_rounds": [round(r["requests"] / (r["duration_us"] / 1e6), 1) for r in rs],
                    "p50_ms": statistics.median(r["latency_us"]["p50"] for r in rs) / 1000,
                    "p99_ms": statistics.median(r["latency_us"]["p99"] for r in rs) / 1000,
                    "p99_rounds": [round(r["latency_us"]["p99"] / 1000, 2) for r in rs],
                    "cpu_rounds": [round(cpu_of(r), 1) for r in rs if cpu_of(r)],
                    "cpu_us": cpu * 1e6 / reqs if reqs else None,
                    "requests": reqs, "statuses": statuses, "socket_errors": errs,
                    "expected_status": int(expected),
                    "unexpected": reqs - statuses.get(expected, 0),
                    "foreign_cpu_pct": statistics.median(
                        100 * r["cpu_s"]["foreign"] / (r["wall_s"] * (os.cpu_count() or 1)) for r in rs),
                }
    for (sc, c, sy), cell in cells.items():
        base = cells.get((sc, c, "passthrough"))
        cell["rps_vs_pass"] = ratio(cell["rps"], base["rps"]) if base else None
        cell["cpu_vs_pass"] = ratio(cell["cpu_us"], base["cpu_us"]) if base else None
        cell["p99_vs_pass"] = ratio(cell["p99_ms"], base["p99_ms"]) if base else None
        # Each round's run against the passthrough's run of the same round (same minute, same machine state).
        mine = {r["round"]: r for r in runs if r["scenario"] == sc and r["conns"] == c and r["system"] == sy}
        pass_ = {r["round"]: r for r in runs if r["scenario"] == sc and r["conns"] == c and r["system"] == "passthrough"}
        both = [rd for rd in mine if rd in pass_]
        cell["rps_vs_pass_rounds"] = [round(rps_of(mine[rd]) / rps_of(pass_[rd]), 4) for rd in both]
        cell["cpu_vs_pass_rounds"] = [round(cpu_of(mine[rd]) / cpu_of(pass_[rd]), 4) for rd in both
                                      if cpu_of(pass_[rd])]
        js = cells.get((sc, c, "js"))
        if sy in JS_COMPARABLE and js and sc not in NOT_VS_JS:
            cell["rps_vs_js"] = ratio(cell["rps"], js["rps"])
            cell["cpu_vs_js"] = ratio(cell["cpu_us"], js["cpu_us"])
    return cells


def render(meta: dict, cells: dict, systems, conns_list, scenarios, creation: dict, startup: dict,
           origin: dict) -> str:
    L = []
    L.append(f"# keyward benchmark {meta['stamp']}{' (smoke)' if meta['smoke'] else ''}")
    L.append("")
    L.append(f"wrangler {meta['wrangler']}, workerd {meta['workerd']}, wrk {meta['wrk']}; {meta['cpus']} CPUs; "
             f"{meta['rounds']} round(s) x {meta['duration_s']:g}s per cell, systems interleaved; "
             f"load on each worker's own workerd socket; {meta['keys']} keys rotated.")
    if meta.get("keyward_vars"):
        L.append("System keyward ran with " + ", ".join(f"`{v}`" for v in meta["keyward_vars"])
                 + " (--keyward-var); the other keyward systems with their defaults.")
    L.append("req/s, p50 and p99 are medians over rounds; CPU is the worker's workerd utime+stime per request "
             "over all rounds. 'vs pass' = ratio to the passthrough worker for the same scenario and "
             "connections; 'vs JS' = keyward / the JavaScript verifier (req/s > 1 and CPU < 1 = keyward wins).")
    fc = sorted(x["foreign_cpu_pct"] for x in cells.values())
    if fc:
        L.append(f"Noise: processes outside the benchmark used {pct(fc, 50):.0f}% of the machine's CPU during a "
                 f"typical measured run (worst cell {fc[-1]:.0f}%); numbers from a busy machine compare only "
                 f"as ratios.")
    L.append("")
    L.append("Each cell: median over rounds, then (min-max over rounds) where there were several, so a "
             "difference inside that spread is noise.")
    L.append("")
    L.append("| scenario | conns | system | req/s | p50 ms | p99 ms | CPU us/req | req/s vs pass | CPU vs pass "
             "| p99 vs pass | req/s vs JS | CPU vs JS | statuses |")
    L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")

    def mm(v, rounds, digits=0):
        if v is None:
            return "-"
        if len(rounds or []) > 1:
            return f"{fmt(v, digits)} ({fmt(min(rounds), digits)}-{fmt(max(rounds), digits)})"
        return fmt(v, digits)

    for sc in scenarios:
        for c in conns_list:
            for sy in systems:
                x = cells.get((sc, c, sy))
                if not x:
                    continue
                st = " ".join(f"{k}:{v}" for k, v in sorted(x["statuses"].items()))
                if x["unexpected"]:
                    st += f" (**{x['unexpected']} not {x['expected_status']}**)"
                if x["socket_errors"]:
                    st += f" (**{x['socket_errors']} socket errors**)"
                L.append(f"| {sc} | {c} | {sy} | {mm(x['rps'], x.get('rps_rounds'))} | {fmt(x['p50_ms'], 2)} "
                         f"| {mm(x['p99_ms'], x.get('p99_rounds'), 1)} | {mm(x['cpu_us'], x.get('cpu_rounds'))} "
                         f"| {mm(x.get('rps_vs_pass'), x.get('rps_vs_pass_rounds'), 2)} "
                         f"| {mm(x.get('cpu_vs_pass'), x.get('cpu_vs_pass_rounds'), 2)} | {fmt(x.get('p99_vs_pass'), 2)} "
                         f"| {fmt(x.get('rps_vs_js'), 2)} | {fmt(x.get('cpu_vs_js'), 2)} | {st} |")
    L.append("")
    notes = []
    if "valid-ratelimited" in scenarios:
        notes.append(
            f"valid-ratelimited: the valid request with {meta['ratelimited_keys']} other keys, each created with "
            f"`ratelimit` {meta['ratelimit_tier']['limit']}/{meta['ratelimit_tier']['period']}s, so keyward calls the "
            f"tier's Rate Limiting binding before forwarding; a key sees at most ~{meta['ratelimit_bound_per_key']} "
            f"requests per window even at {RL_ASSUMED_MAX_RPS:,} req/s, and a 429 aborts the run. Locally the binding "
            "is miniflare's emulation (a call to a Durable Object that updates SQLite, in the worker's workerd), which "
            "costs more than the platform's in-location counter; passthrough-ratelimit (the passthrough plus the same "
            "binding call per request, keyed by the Authorization value) shows that cost alone. The JS verifier ignores "
            "the key's `rl` and the passthrough ignores keys: both run these requests with their normal behaviour, "
            "so no 'vs JS' ratio.")
    if "valid-metered" in scenarios:
        notes.append(
            "valid-metered: the valid keys on `GET /metered/42` (config/policy.json `/metered/**`: cost 1, no scope), "
            "so keyward makes one call to the workspace's credit counter, a SQLite-backed Durable Object, before "
            "forwarding. Every bench key is in one workspace, so one counter serves the whole load (the worst case "
            f"for it). The workspace is topped up with {METERED_FUNDING:,} credits before load, and a 402 or 503 "
            "aborts the run. Locally the object runs in the worker's own workerd, so its CPU is in the row. "
            "passthrough-credits (the passthrough plus the same kind of round trip: a JS Durable Object found by "
            "name, a small JSON op over stub.fetch, one SQLite UPDATE of a balance) shows that round trip's cost "
            "alone. The JS verifier (no credits) and keyward-nocache do not run it.")
        acc = meta.get("credits_accounting") or {}
        for sy, v in acc.items():
            notes.append(
                f"Credits accounting ({sy}): the counter spent {v['spent']:,} credits for {v['forwarded']:,} forwarded "
                f"metered requests (sanity check, priming and measured runs; up to {v['cut_off_bound']} more may be "
                "spent by requests in flight when wrk stops)"
                + (": consistent." if v["ok"] and not v["reloads"] else
                   ": not checked (the worker restarted during the run)." if v["reloads"] else
                   ": **MISMATCH**."))
    if "passthrough-identity" in systems:
        notes.append(
            "passthrough-identity: the passthrough plus the forward every key gateway makes for a request it lets "
            "through (bench/passthrough/identity.js, plain JavaScript): the headers copied, Authorization and the "
            "client's identity and forwarding headers dropped, X-Forwarded-For, five identity headers of one fixed key "
            "and X-Request-Id set, a failed fetch turned into a 502. No key check. Its ratio to the passthrough is "
            "what that forward costs by itself, the floor under every verifier's valid-key row.")
    if "keyward-signed" in systems:
        notes.append(
            "keyward-signed: keyward with `ORIGIN_SIGNING_SECRET` set (X-Keyward-Signature, HMAC-SHA-256, on every "
            "forwarded request; checked at the origin before load); run only on the scenarios that forward, since "
            "a refusal signs nothing. No 'vs JS' ratio (the JS verifier does not sign).")
    for n in notes:
        L.append(n)
        L.append("")
    cost = [(sc, sy, label) for sc, sy, label in COST_ROWS if sc in scenarios and sy in systems]
    if cost and "passthrough" in systems:
        L.append("| hot-path cost (issue #12) | conns | req/s | p99 ms | CPU us/req | req/s vs pass (rounds min-max) "
                 "| CPU vs pass (rounds min-max) |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")

        def spread(v, rounds):
            if v is None:
                return "-"
            return f"{v:.2f} ({min(rounds):.2f}-{max(rounds):.2f})" if len(rounds or []) > 1 else f"{v:.2f}"

        for c in conns_list:
            for sc, sy, label in cost:
                x = cells.get((sc, c, sy))
                if not x:
                    continue
                L.append(f"| {label} ({sy}) | {c} | {fmt(x['rps'])} | {fmt(x['p99_ms'], 2)} | {fmt(x['cpu_us'])} "
                         f"| {spread(x.get('rps_vs_pass'), x.get('rps_vs_pass_rounds'))} "
                         f"| {spread(x.get('cpu_vs_pass'), x.get('cpu_vs_pass_rounds'))} |")
        L.append("")
        goal = [(c, cells[("valid", c, "keyward")]["rps_vs_pass"]) for c in conns_list
                if ("valid", c, "keyward") in cells and cells[("valid", c, "keyward")].get("rps_vs_pass") is not None]
        if goal:
            short = [f"{v:.2f} at {c}" for c, v in goal if v < VALID_GOAL]
            L.append(f"Valid-key req/s vs passthrough (keyward, medians): "
                     + ", ".join(f"{v:.2f} at {c} conns" for c, v in goal)
                     + (f": meets the >= {VALID_GOAL} goal." if not short
                        else f": **below the >= {VALID_GOAL} goal** ({'; '.join(short)})."))
            L.append("")
        fwd = []
        for c in conns_list:
            kw, pi = cells.get(("valid", c, "keyward")), cells.get(("valid", c, "passthrough-identity"))
            if kw and pi:
                fwd.append(f"the forward alone x{fmt(pi.get('rps_vs_pass'), 2)} of the passthrough's req/s "
                           f"(CPU {pi['cpu_us'] - cells[('valid', c, 'passthrough')]['cpu_us']:+.0f} us/req); keyward vs it: "
                           f"req/s x{fmt(ratio(kw['rps'], pi['rps']), 2)}, CPU {kw['cpu_us'] - pi['cpu_us']:+.0f} us/req "
                           f"at {c} conns")
        if fwd:
            L.append("Valid key (keyward) vs the passthrough doing the same forward without a key check "
                     "(passthrough-identity), medians: " + "; ".join(fwd) + ".")
            L.append("")
        floor = []
        for c in conns_list:
            kw, pr = cells.get(("valid-ratelimited", c, "keyward")), cells.get(("valid-ratelimited", c, "passthrough-ratelimit"))
            if kw and pr:
                floor.append(f"req/s x{fmt(ratio(kw['rps'], pr['rps']), 2)}, CPU x{fmt(ratio(kw['cpu_us'], pr['cpu_us']), 2)} "
                             f"at {c} conns")
        if floor:
            L.append("Valid key with a rate limit (keyward) vs the passthrough making the same binding call "
                     "(passthrough-ratelimit), medians: " + ", ".join(floor) + ".")
            L.append("")
        for c in conns_list:
            m, v = cells.get(("valid-metered", c, "keyward")), cells.get(("valid", c, "keyward"))
            if not m:
                continue
            parts = [f"req/s x{fmt(m.get('rps_vs_pass'), 2)} of the passthrough"]
            if v:
                parts.append(f"x{fmt(ratio(m['rps'], v['rps']), 2)} of keyward's unmetered valid-key row, CPU "
                             f"{m['cpu_us'] - v['cpu_us']:+.0f} us/req over it, p99 {m['p99_ms'] - v['p99_ms']:+.2f} ms")
            pc, p = cells.get(("valid-metered", c, "passthrough-credits")), cells.get(("valid-metered", c, "passthrough"))
            if pc and p:
                parts.append(f"the counter's round trip alone (passthrough-credits vs passthrough): req/s "
                             f"x{fmt(ratio(pc['rps'], p['rps']), 2)}, CPU {pc['cpu_us'] - p['cpu_us']:+.0f} us/req, p99 "
                             f"{pc['p99_ms'] - p['p99_ms']:+.2f} ms; keyward's metered row vs that floor: req/s "
                             f"x{fmt(ratio(m['rps'], pc['rps']), 2)}, CPU x{fmt(ratio(m['cpu_us'], pc['cpu_us']), 2)}")
            L.append(f"Metered route, cost 1 (keyward), {c} conns, medians: " + "; ".join(parts) + ".")
            L.append("")
    if creation:
        L.append("| key creation (POST /admin/v1/keys, preset sdk) | keys | concurrency | seconds | keys/s | "
                 "p50 ms | p99 ms |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for sy, c in creation.items():
            L.append(f"| {sy} | {c['keys']} | {c['concurrency']} | {c['seconds']:.2f} | {fmt(c['keys_per_s'], 1)} | "
                     f"{c['p50_ms']:.1f} | {c['p99_ms']:.1f} |")
        L.append("")
    L.append("| time to first response after start | seconds | note |")
    L.append("|---|---:|---|")
    for sy, v in startup.items():
        L.append(f"| {sy} | {v['seconds']:.2f} | {v['note']} |")
    L.append("")
    L.append("| origin alone (Node http, GET) | req/s | p50 ms | p99 ms | origin CPU us/req |")
    L.append("|---|---:|---:|---:|---:|")
    for k, v in origin.items():
        L.append(f"| {k.replace('c', '', 1)} conns | {fmt(v['rps'])} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | "
                 f"{fmt(v['cpu_us_per_req'])} |")
    L.append("")
    feed = {k: v for k, v in (meta.get("feed") or {}).items() if v}
    if feed:
        L.append("| revocation feed (issue #16) | pulls | pages | seconds under load | pulls per isolate per second "
                 "of load |")
        L.append("|---|---:|---:|---:|---:|")
        for sy, v in feed.items():
            L.append(f"| {sy} | {v['pulls']} | {v['pages']} | {fmt(v['load_s'], 1)} | {fmt(v['per_load_s'], 2)} |")
        L.append("")
        L.append("The pull runs in waitUntil after a response, at most once per REVOCATION_POLL_MS (1000); a pull "
                 "that is caught up is one Durable Object request answered from memory. Compare the valid-key rows "
                 "of keyward and keyward-nofeed for its cost on the request path.")
        L.append("")
    reloaded = {k: v for k, v in (meta.get("reloads") or {}).items() if v}
    if reloaded:
        L.append(f"**Warning:** workers restarted during the run (caches reset): {reloaded}.")
        L.append("")
    verdict = meta.get("verdict")
    if verdict:
        L.append(verdict["text"])
        L.append("")
    return "\n".join(L)


def feed_stats(logfile: Path, load_s: float | None) -> dict | None:
    """The revocation feed's pull counters from an instance's KEYWARD_FEED_STATS lines (one isolate per
    wrangler dev, a line after every background pull): totals, and pulls per second of load (an
    isolate pulls only after responses, so idle time between cells adds none; the few pulls while
    keys were created count too, so this errs high)."""
    import re
    pts = []
    try:
        text = logfile.read_text(errors="replace")
    except OSError:
        return None
    for m in re.finditer(r"feed-stats[^\n]*?at=(\d+) pulls=(\d+) pages=(\d+)", text):
        pts.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
    if not pts:
        return None
    return {"pulls": pts[-1][1], "pages": pts[-1][2], "load_s": load_s,
            "per_load_s": pts[-1][1] / load_s if load_s else None}


def verdict_of(cells: dict, systems) -> dict | None:
    if "keyward" not in systems or "js" not in systems:
        return None
    wins, total, lines = 0, 0, []
    for (sc, c, sy), x in sorted(cells.items()):
        if sy != "keyward" or x.get("rps_vs_js") is None:
            continue
        total += 1
        ok = x["rps_vs_js"] > 1.0 and (x.get("cpu_vs_js") or 0) < 1.0
        wins += ok
        if not ok:
            lines.append(f"{sc}/{c}: req/s x{x['rps_vs_js']:.2f}, CPU x{x['cpu_vs_js']:.2f}")
    text = (f"Verdict: keyward (cache on) beats the JavaScript verifier (more req/s and less CPU/req) in "
            f"{wins} of {total} scenario/connection cells.")
    if lines:
        text += " Not in: " + "; ".join(lines) + "."
    # Issue #15's tail target: valid-key p99 within 1.25x the passthrough's.
    tail = [(c, x["p99_vs_pass"]) for (sc, c, sy), x in sorted(cells.items())
            if sc == "valid" and sy == "keyward" and x.get("p99_vs_pass") is not None]
    if tail:
        missed = [f"{v:.2f} at {c}" for c, v in tail if v > P99_GOAL]
        text += (" Valid-key p99 vs passthrough: " + ", ".join(f"{v:.2f} at {c} conns" for c, v in tail)
                 + (f" (goal <= {P99_GOAL}: met)." if not missed else f" (**goal <= {P99_GOAL} missed**: {'; '.join(missed)}).")
                 )
    return {"wins": wins, "cells": total, "beats_js_everywhere": wins == total and total > 0,
            "p99_vs_pass": dict((str(c), v) for c, v in tail), "text": text}


# ---------------------------------------------------------------------------------------------------
# main


def tool_version(argv) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        return (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def workerd_version() -> str:
    try:
        pkg = json.loads((ROOT / "node_modules" / "workerd" / "package.json").read_text())
        return pkg.get("version", "?")
    except OSError:
        return tool_version(["workerd", "--version"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a few seconds per system (CI)")
    ap.add_argument("--systems", help="comma list from " + ",".join(SYSTEMS_ALL) + " (default: all; "
                    "keyward-baseline only with --baseline)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list from " + ",".join(SCENARIOS))
    ap.add_argument("--rounds", type=int, help="rounds (default 3; smoke 1)")
    ap.add_argument("--duration", type=int, help="whole seconds per wrk run (default 4; smoke 1)")
    ap.add_argument("--prime", type=int, help="whole seconds of unrecorded load just before each measured run, "
                    "so per-isolate caches are warm (default 1, and 2 for valid-key scenarios on verifiers; "
                    "smoke 0)")
    ap.add_argument("--conns", help="comma list of connection counts (default 8,32; smoke 8)")
    ap.add_argument("--keys", type=int, help="keys to create and rotate (default 1000; smoke 50)")
    ap.add_argument("--seed-concurrency", type=int, default=4, help="parallel POST /admin/v1/keys")
    ap.add_argument("--no-build", action="store_true", help="skip the explicit release build")
    ap.add_argument("--baseline", help="a build/ directory of another keyward version (scripts/build.sh's output), "
                    "benchmarked as system keyward-baseline next to this tree's build: an A/B in one run")
    ap.add_argument("--keyward-var", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting for system keyward only (repeatable), e.g. with --baseline set to the same "
                    "build/ for an A/B of one setting; recorded in the table")
    ap.add_argument("--require-win", action="store_true", help="exit 3 unless keyward beats JS in every cell")
    ap.add_argument("--out", help="results directory (default bench/results/<stamp>)")
    ap.add_argument("--exclusive", action="store_true",
                    help=f"hold the build lock ({LOCK_PATH}) for the whole run, so no other keyward build or "
                    "locked wrangler start competes for the CPU (they wait)")
    a = ap.parse_args()

    default_systems = [s for s in SYSTEMS_ALL if a.baseline or s != "keyward-baseline"]
    systems = [s.strip() for s in (a.systems or ",".join(default_systems)).split(",") if s.strip()]
    if "keyward-baseline" in systems and not a.baseline:
        ap.error("system keyward-baseline needs --baseline DIR (a build/ directory of another keyward version)")
    for s in systems:
        if s not in SYSTEMS_ALL:
            ap.error(f"unknown system {s!r}")
    if "passthrough" not in systems:
        ap.error("the passthrough system is required (ratios are relative to it)")
    systems = [s for s in SYSTEMS_ALL if s in systems]
    rounds = a.rounds or (1 if a.smoke else 3)
    duration = a.duration or (1 if a.smoke else 4)
    prime = a.prime if a.prime is not None else (0 if a.smoke else 1)
    conns_list = [int(c) for c in (a.conns or ("8" if a.smoke else "8,32")).split(",")]
    nkeys = a.keys or (50 if a.smoke else 1000)
    scenarios = [sc.strip() for sc in a.scenarios.split(",") if sc.strip()]
    for sc in scenarios:
        if sc not in SCENARIOS:
            ap.error(f"unknown scenario {sc!r}")
    scenarios = [sc for sc in SCENARIOS if sc in scenarios]
    # A floor that runs none of the chosen scenarios is not started (e.g. passthrough-credits without
    # valid-metered).
    systems = [sy for sy in systems
               if sy == "passthrough" or any(sc in SYSTEM_SCENARIOS.get(sy, SCENARIOS) for sc in scenarios)]
    # Keys for valid-ratelimited: at least nkeys, and enough that no key reaches RL_HEADROOM of its limit in
    # one window: a system's load on that scenario (priming included) spans at most `exposure` seconds of
    # any window, at no more than RL_ASSUMED_MAX_RPS, spread evenly over the rotated keys.
    exposure = min(RL_TIER["period"], rounds * len(conns_list) * (2 * prime + duration)) \
        if "valid-ratelimited" in scenarios else 0
    rl_keys = max(nkeys, -(-RL_ASSUMED_MAX_RPS * exposure // int(RL_TIER["limit"] * RL_HEADROOM)))

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ("-smoke" if a.smoke else "")
    # Absolute: some wrangler commands run from the system's own directory (bench/js-verifier).
    out = Path(a.out).resolve() if a.out else BENCH / "results" / stamp
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    state_root = Path(tempfile.mkdtemp(prefix="keyward-bench-"))
    pgid_file = Path(os.environ.get("KEYWARD_BENCH_PGID_FILE") or raw / "pgids")
    procs = Procs(pgid_file)
    t_start = time.monotonic()

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    for tool in ("wrangler", "node", "wrk", "curl"):
        if not shutil.which(tool):
            raise BenchError(f"`{tool}` not found on PATH")

    meta = {
        "stamp": stamp, "smoke": a.smoke, "exclusive": a.exclusive, "systems": systems, "rounds": rounds, "duration_s": duration,
        "prime_s": prime, "conns": conns_list, "keys": nkeys, "cpus": os.cpu_count(), "keyward_vars": a.keyward_var,
        "ratelimited_keys": rl_keys, "ratelimit_tier": RL_TIER,
        "ratelimit_bound_per_key": round(RL_ASSUMED_MAX_RPS * exposure / rl_keys),
        "wrangler": tool_version(["wrangler", "--version"]).replace("⛅️", "").strip(),
        "workerd": workerd_version(), "wrk": tool_version(["wrk", "--version"]).split(" [")[0],
        "node": tool_version(["node", "--version"]), "host": os.uname().nodename,
        "env": {k: os.environ.get(k) for k in ("VSCODE_INSPECTOR_OPTIONS", "X_LOCAL_OBSERVABILITY",
                                                "CLOUDFLARE_CF_FETCH_ENABLED")},
    }
    log(f"results -> {out}; systems {systems}; {rounds} round(s) x {duration:g}s x conns {conns_list}")

    global _exclusive_lock
    try:
        if a.exclusive and not LOCK_HELD:
            _exclusive_lock = open(LOCK_PATH, "a")
            if not try_flock(_exclusive_lock):
                log(f"--exclusive: waiting for {LOCK_PATH}")
                fcntl.flock(_exclusive_lock, fcntl.LOCK_EX)
            log(f"--exclusive: holding {LOCK_PATH} until the end of the run")
        # 1. release build (keyward) and a private snapshot of it
        build = {}
        snapshot = state_root / "keyward-build"
        if any(s.startswith("keyward") for s in systems):
            labels = [] if a.no_build else (["release"] if a.smoke else ["release", "noop"])
            build = build_keyward(raw, snapshot, labels)
            log(f"build: {build}")
        meta["build"] = build

        # 2. origin, measured alone once
        origin_port = free_port()
        origin = procs.start("origin", ["node", str(BENCH / "origin" / "server.mjs"), str(origin_port)], BENCH,
                             raw / "origin.log")
        for _ in range(100):
            try:
                http_request(origin_port, "GET", "/")
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise BenchError(f"origin did not start; see {raw / 'origin.log'}")
        unknown = raw / "keys-unknown.txt"
        unknown.write_text("".join(make_key() + "\n" for _ in range(nkeys)))
        log("origin alone ...")
        origin_res = origin_alone(origin_port, origin.pid, 1 if a.smoke else 3, raw, unknown)
        log(f"origin alone: {origin_res}")
        origin_url = f"http://127.0.0.1:{origin_port}"

        # 3. systems
        admin_token = secrets.token_hex(24)
        signing_secret = secrets.token_hex(32)  # keyward-signed's ORIGIN_SIGNING_SECRET (never printed)
        defs = {
            "passthrough": System("passthrough", BENCH / "passthrough", {"ORIGIN_URL": origin_url},
                                  state_root / "passthrough"),
            "passthrough-ratelimit": System(
                "passthrough-ratelimit", BENCH / "passthrough", {"ORIGIN_URL": origin_url},
                state_root / "passthrough-ratelimit",
                passthrough_ratelimit_config(state_root / "passthrough-ratelimit.wrangler.json")),
            "passthrough-credits": System(
                "passthrough-credits", BENCH / "passthrough", {"ORIGIN_URL": origin_url},
                state_root / "passthrough-credits",
                passthrough_credits_config(state_root / "passthrough-credits.wrangler.json")),
            "passthrough-identity": System(
                "passthrough-identity", BENCH / "passthrough", {"ORIGIN_URL": origin_url},
                state_root / "passthrough-identity",
                passthrough_identity_config(state_root / "passthrough-identity.wrangler.json")),
            "js": System("js", BENCH / "js-verifier", {"ORIGIN_URL": origin_url}, state_root / "js"),
        }
        if snapshot.is_dir():
            defs["keyward"] = System(
                "keyward", ROOT, {"ORIGIN_URL": origin_url, "ADMIN_TOKEN": admin_token}, state_root / "keyward",
                keyward_config(snapshot, "keyward-bench", state_root / "keyward.wrangler.json"))
            defs["keyward-signed"] = System(
                "keyward-signed", ROOT,
                {"ORIGIN_URL": origin_url, "ADMIN_TOKEN": admin_token, "ORIGIN_SIGNING_SECRET": signing_secret},
                state_root / "keyward-signed",
                keyward_config(snapshot, "keyward-bench-signed", state_root / "keyward-signed.wrangler.json"))
            defs["keyward-signed"].signing_secret = signing_secret
            defs["keyward-nocache"] = System(
                "keyward-nocache", ROOT,
                {"ORIGIN_URL": origin_url, "ADMIN_TOKEN": admin_token, "KEY_CACHE_TTL_S": "0"},
                state_root / "keyward-nocache",
                keyward_config(snapshot, "keyward-bench-nocache", state_root / "keyward-nocache.wrangler.json"))
            defs["keyward-nofeed"] = System(
                "keyward-nofeed", ROOT,
                {"ORIGIN_URL": origin_url, "ADMIN_TOKEN": admin_token, "REVOCATION_FEED": "off"},
                state_root / "keyward-nofeed",
                keyward_config(snapshot, "keyward-bench-nofeed", state_root / "keyward-nofeed.wrangler.json"))
            # The revocation feed is on in the others (wrangler.toml); each isolate logs its pull
            # counters every 10 s, from which the feed's own request rate is read after the run.
            for name in ("keyward", "keyward-signed", "keyward-nocache"):
                defs[name].vars["KEYWARD_FEED_STATS"] = "1"
        for nv in a.keyward_var:
            name, sep, value = nv.partition("=")
            if not sep or not name or "keyward" not in defs:
                raise BenchError(f"--keyward-var {nv!r}: want NAME=VALUE (and a keyward build)")
            defs["keyward"].vars[name] = value
        if a.baseline:
            base = state_root / "keyward-baseline-build"
            shutil.copytree(Path(a.baseline).resolve(), base, ignore=shutil.ignore_patterns(".tmp"))
            defs["keyward-baseline"] = System(
                "keyward-baseline", ROOT, {"ORIGIN_URL": origin_url, "ADMIN_TOKEN": admin_token},
                state_root / "keyward-baseline",
                keyward_config(base, "keyward-bench-baseline", state_root / "keyward-baseline.wrangler.json"))
        elif "keyward-baseline" in systems:
            raise BenchError("system keyward-baseline needs --baseline DIR (a build/ directory of another version)")
        active = {name: defs[name] for name in systems}
        creation = {}
        start_deadline = 300.0

        def start_keyward(s: System):
            log(f"{s.name}: applying D1 migrations")
            wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", str(s.state),
                      "-c", str(s.config)], ROOT, raw / f"wrangler-{s.name}-setup.log")
            start_system(procs, s, raw, start_deadline)
            log(f"{s.name}: creating {nkeys} keys through the admin API")
            creation[s.name], s.records = seed_keyward(s, admin_token, nkeys, a.seed_concurrency)
            log(f"{s.name}: key creation {creation[s.name]}")
            tier = f"{RL_TIER['limit']}/{RL_TIER['period']}s"
            log(f"{s.name}: creating {rl_keys} keys with ratelimit {tier}")
            label = f"{s.name}, with ratelimit {tier}"
            creation[label], s.rl_records = seed_keyward(s, admin_token, rl_keys, a.seed_concurrency, RL_TIER, "-rl")
            log(f"{s.name}: key creation {creation[label]}")
            _, probe = seed_keyward(s, admin_token, 1, 1, RL_PROBE_TIER, "-rlprobe")
            s.rl_probe = probe[0]
            if "valid-metered" in scenarios:
                log(f"{s.name}: topping up workspace bench with {METERED_FUNDING:,} credits")
                fund_workspace(s, admin_token)
                _, unfunded = seed_keyward(s, admin_token, 1, 1, None, "-unfunded", "bench-unfunded")
                s.unfunded_probe = unfunded[0]
                probe = probe + unfunded
            (raw / f"created-{s.name}.json").write_text(
                json.dumps([r["obj"] for r in s.records + s.rl_records + probe], indent=1))

        start_system(procs, active["passthrough"], raw, start_deadline)
        if "passthrough-ratelimit" in active:
            start_system(procs, active["passthrough-ratelimit"], raw, start_deadline)
        if "passthrough-credits" in active:
            start_system(procs, active["passthrough-credits"], raw, start_deadline)
        if "passthrough-identity" in active:
            start_system(procs, active["passthrough-identity"], raw, start_deadline)
        if "keyward" in active:
            start_keyward(active["keyward"])
        if "js" in active:
            s = active["js"]
            source = active.get("keyward") or active.get("keyward-signed") or active.get("keyward-nocache")
            if source is None:
                s.records, s.rl_records = local_records(nkeys), local_records(rl_keys, RL_TIER)
            else:
                if not source.records:
                    start_keyward(source)
                s.records, s.rl_records = source.records, source.rl_records
            kvfile = raw / "kv-js.json"
            kvfile.write_text(json.dumps([{"key": key_hash(r["key"]), "value": json.dumps(kv_record(r["obj"]))}
                                          for r in s.records + s.rl_records]))
            log(f"js: loading {len(s.records) + len(s.rl_records)} records into local KV (wrangler kv bulk put)")
            t = time.monotonic()
            wrangler(["kv", "bulk", "put", str(kvfile), "--binding", "KV", "--local", "--persist-to", str(s.state)],
                     s.cwd, raw / "wrangler-js-setup.log")
            meta["kv_bulk_put_s"] = round(time.monotonic() - t, 2)
            start_system(procs, s, raw, start_deadline)
        for name in ("keyward-signed", "keyward-nocache", "keyward-nofeed", "keyward-baseline"):
            if name in active and not active[name].records:
                start_keyward(active[name])
        source = next((active[n] for n in ("keyward", "js", "keyward-signed", "keyward-nocache", "keyward-nofeed")
                       if n in active and active[n].records), None)
        active["passthrough"].records = source.records if source else local_records(nkeys)
        active["passthrough"].rl_records = source.rl_records if source else local_records(rl_keys, RL_TIER)
        for name in ("passthrough-ratelimit", "passthrough-credits", "passthrough-identity"):
            if name in active:
                active[name].records = active["passthrough"].records
                active[name].rl_records = active["passthrough"].rl_records
        for s in active.values():
            write_key_files(s, raw, unknown)

        # 4. sanity checks (first make sure no wrangler restarted its worker since it started)
        for s in active.values():
            if s.port not in listening_ports(s.workerd_pid):
                s.reloads += 1
                log(f"{s.name}: worker reloaded since start; locating its workerd socket again")
                locate_workerd(s)
        def runs_in(sc: str) -> list[str]:
            return [sy for sy in order if sc in SYSTEM_SCENARIOS.get(sy, SCENARIOS)]

        order = list(active)
        failures = []
        for s in active.values():
            metered = "valid-metered" in scenarios and s.name in runs_in("valid-metered")
            for p in sanity_check(s, raw, metered, admin_token):
                failures.append(f"{s.name}: {p}")
        if failures:
            raise BenchError("sanity check failed, not running load:\n  " + "\n  ".join(failures))
        log("sanity checks passed: valid and rate-limited keys -> 200 from origin (signature verified where on, "
            "absent elsewhere), rate limit enforced, bad checksum/unknown -> 401, scope -> 403"
            + ("; metered route forwards and spends exactly 1, a workspace without credits -> 402"
               if "valid-metered" in scenarios else ""))

        # 5. load: warm-up, then rounds; systems interleaved, order rotated per round and cell
        runs: list[dict] = []

        load_s: dict[str, float] = {}  # seconds each system was under load (priming included)

        def cell(sy: str, sc: str, conns: int, secs: float, tag: str, retry: bool = True) -> dict:
            s = active[sy]
            if s.port not in listening_ports(s.workerd_pid):
                s.reloads += 1
                log(f"WARNING {sy}: workerd {s.workerd_pid} no longer listens on {s.port}; locating it again")
                locate_workerd(s)
            try:
                return cell_once(s, sy, sc, conns, secs, tag)
            except Vanished as e:
                if not retry:
                    raise BenchError(f"{sy}: its workerd exited twice during one run ({e})")
                log(f"WARNING {sy}: a measured process exited during the run ({e}); repeating it")
                s.reloads += 1
                time.sleep(2)
                locate_workerd(s)
                return cell(sy, sc, conns, secs, tag, retry=False)

        def cell_once(s: System, sy: str, sc: str, conns: int, secs: float, tag: str) -> dict:
            method, path, kind, expected = SCENARIOS[sc]
            started = time.monotonic()
            pids = {"workerd": s.workerd_pid, "proxy_workerd": s.proxy_pid, "origin": origin.pid}
            if prime > 0:
                # Unrecorded: refills the worker's per-isolate cache (entries outlive a 30 s TTL only while
                # in use, and the other cells run in between), so a measured run sees steady state.
                secs_prime = prime * (2 if sy in VERIFIERS and kind in ("valid", "valid-rl") else 1)
                wp = measure(s.port, pids, max(conns_list), secs_prime, s.keys[kind], method, path,
                             raw / f"wrk-{tag}-prime-{sy}-{sc}-c{conns}.txt")
                count_metered(s, sc, wp, max(conns_list))
                check_never(sy, sc, wp)
            w = measure(s.port, pids, conns, secs, s.keys[kind], method, path,
                        raw / f"wrk-{tag}-{sy}-{sc}-c{conns}.txt")
            count_metered(s, sc, w, conns)
            check_never(sy, sc, w)
            load_s[sy] = load_s.get(sy, 0.0) + time.monotonic() - started
            w.update(system=sy, scenario=sc, conns=conns, round=tag,
                     expected_status=expected if sy in VERIFIERS else 200)
            with open(raw / "runs.jsonl", "a") as f:
                f.write(json.dumps(w) + "\n")
            return w

        def check_never(sy: str, sc: str, w: dict) -> None:
            for status, what in NEVER.get(sc, {}).items():
                if w["statuses"].get(status):
                    hint = f" ({rl_keys} keys rotated); raise --keys" if status == "429" else ""
                    raise BenchError(f"{sy} {sc}: {w['statuses'][status]} answers were {status}: the bench reached "
                                     f"{what}, which it must stay under{hint}")

        def count_metered(s: System, sc: str, w: dict, conns: int) -> None:
            # For the check after load that the counter spent exactly what was forwarded: requests still in
            # flight when wrk stops (at most one per connection) may be spent without being counted here.
            if sc == "valid-metered":
                s.metered_forwarded += w["statuses"].get("200", 0)
                s.metered_cut += conns

        n_cells = sum(len(conns_list) * len(runs_in(sc)) for sc in scenarios)
        for rnd in range(rounds):
            log(f"round {rnd + 1}/{rounds}: {n_cells} runs of {duration:g}s")
            k = 0
            for conns in conns_list:
                for sc in scenarios:
                    these = runs_in(sc)
                    rot = (rnd + k) % len(these)
                    k += 1
                    for sy in these[rot:] + these[:rot]:
                        w = cell(sy, sc, conns, duration, f"r{rnd + 1}")
                        runs.append(w)
                        if w["requests"] == 0:
                            raise BenchError(f"{sy} {sc} c{conns}: wrk completed no request; see raw/")

        meta["reloads"] = {sy: s.reloads for sy, s in active.items()}
        meta["feed"] = {sy: feed_stats(raw / f"wrangler-{sy}.log", load_s.get(sy)) for sy, s in active.items()
                        if s.vars.get("KEYWARD_FEED_STATS") == "1"}
        # Zero overspend, measured: what each keyward instance's counter spent against what it forwarded.
        accounting = {}
        if "valid-metered" in scenarios:
            for sy in runs_in("valid-metered"):
                s = active[sy]
                if not sy.startswith("keyward"):
                    continue
                spent = credits_spent(s, admin_token)
                ok = s.metered_forwarded <= spent <= s.metered_forwarded + s.metered_cut
                accounting[sy] = {"forwarded": s.metered_forwarded, "spent": spent, "cut_off_bound": s.metered_cut,
                                  "ok": ok or s.reloads > 0, "reloads": s.reloads}
                log(f"{sy}: counter spent {spent:,} credits for {s.metered_forwarded:,} forwarded metered requests "
                    f"(+ at most {s.metered_cut} cut off at the end of runs){'' if ok else ': MISMATCH'}")
        meta["credits_accounting"] = accounting

        # 6. report
        cells = aggregate(runs, order, conns_list, scenarios)
        verdict = verdict_of(cells, order)
        meta["verdict"] = verdict
        startup = {}
        for sy, s in active.items():
            note = "wrangler dev spawn -> first HTTP answer"
            if sy.startswith("keyward"):
                note += " (prebuilt release; "
                if build.get("release_s") is not None:
                    note += f"`scripts/build.sh` took {build['release_s']:.1f}s"
                    if build.get("noop_s") is not None:
                        note += f", a no-op rebuild {build['noop_s']:.1f}s, which plain `wrangler dev` adds at start"
                else:
                    note += "--no-build"
                note += ")"
            startup[sy] = {"seconds": round(s.first_response_s, 2), "note": note}
        meta["total_s"] = round(time.monotonic() - t_start, 1)
        table = render(meta, cells, order, conns_list, scenarios, creation, startup, origin_res)
        table += f"\nTotal run time {meta['total_s']:.0f}s.\n"
        (out / "table.md").write_text(table)
        summary = {
            "meta": meta,
            "sockets": {sy: {"wrangler_port": s.wrangler_port, "workerd_port": s.port, "workerd_pid": s.workerd_pid}
                        for sy, s in active.items()},
            "cells": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in x.items()}
                      for x in cells.values()],
            "key_creation": creation, "startup": startup, "origin_alone": origin_res,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print()
        print(table)
        log(f"wrote {out / 'table.md'}, {out / 'summary.json'} and raw data under {raw}")
        bad = [x for x in cells.values() if x["unexpected"] or x["socket_errors"]]
        if bad:
            log("WARNING: some cells saw unexpected statuses or socket errors (marked in the table)")
        if a.require_win and verdict and not verdict["beats_js_everywhere"]:
            log("--require-win: keyward does not beat the JavaScript verifier everywhere")
            return 3
        return 0
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping everything")
        return 130
    finally:
        log("stopping all started processes")
        procs.stop_all()
        shutil.rmtree(state_root, ignore_errors=True)
        if _exclusive_lock is not None:
            _exclusive_lock.close()  # releases the lock


if __name__ == "__main__":
    sys.exit(main())
