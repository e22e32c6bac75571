#!/usr/bin/env python3
"""keyward admin API at scale (issue #15). Run it through bench/admin-scale.sh, which sets the environment.

One workspace with 100,000 keys (--keys), seeded in bulk straight into local D1 (SQLite, the file
wrangler dev persists) and local KV (`wrangler kv bulk put --local`), cloned from a key the worker
created itself so that every row and every KV record has exactly the worker's shape (a full reconcile
must then find nothing to write, which the run checks). Then, over HTTP with the root token against
the worker's own workerd socket, one request at a time, each timed on the client:

  list, first page          GET /admin/v1/keys?limit=50
  list, page 500            the same page each time, reached by following next_cursor
  list ?status=revoked      first page (1 % of the keys are revoked)
  list ?status=expired      first page: no key is expired, so the page is empty after examining one
                            window of active keys, with a cursor to go on from
  audit, first page         GET /admin/v1/audit?limit=50 (an audit entry per seeded key)
  get                       GET /admin/v1/keys/{id} of random seeded keys
  create                    POST /admin/v1/keys (preset sdk)
  revoke                    POST /admin/v1/keys/{id}/revoke of random seeded active keys
  reconcile, one page       POST /admin/v1/reconcile?cursor=..., every page of one full pass

and writes bench/results/<stamp>-admin-scale/{table.md, summary.json, plans.txt} (raw/ is git-ignored):
p50/p99 per operation, the full reconcile's wall time and counts, and SQLite's plan of every statement
the store issues, read through the worker's D1 binding (the test-only _plans route), against the seeded
database before and after ANALYZE.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402  (process handling, build snapshot, workerd socket discovery)

BENCH = B.BENCH
ROOT = B.ROOT
WS = "scale"
PAGE = 50


def log(msg: str) -> None:
    print(f"[admin-scale {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Client:
    """One keep-alive connection to the worker's own socket; every request timed in ms."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body=None, want=(200,)) -> tuple[float, dict | None]:
        headers = {"authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        for attempt in range(2):
            try:
                t = time.perf_counter()
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                ms = (time.perf_counter() - t) * 1000
                break
            except (http.client.HTTPException, OSError):
                # workerd may close an idle keep-alive connection; one fresh try, untimed otherwise.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        if r.status not in want:
            raise B.BenchError(f"{method} {path}: {r.status} {raw[:500]!r}")
        return ms, (json.loads(raw) if raw else None)


def pcts(samples: list[float]) -> dict:
    v = sorted(samples)
    return {"n": len(v), "p50": round(B.pct(v, 50), 2), "p99": round(B.pct(v, 99), 2),
            "max": round(v[-1], 2) if v else 0.0}


# ---------------------------------------------------------------------------------------------------
# seeding


def d1_file(state: Path) -> Path:
    files = [p for p in (state / "v3" / "d1" / "miniflare-D1DatabaseObject").glob("*.sqlite")
             if p.name != "metadata.sqlite"]
    if len(files) != 1:
        raise B.BenchError(f"expected one local D1 database under {state}, found {files}")
    return files[0]


def edge_record(row: dict) -> dict:
    """core::model::Key::edge_record, for a row of the keys table (tombstones keep id and preview)."""
    tomb = row["status"] in ("revoked", "deleted")
    eff = [t for t in (row["expires_at"], row["grace_until"]) if t is not None]
    rec = {
        "v": 1, "id": row["id"], "workspace": row["workspace"],
        "name": "" if tomb else row["name"],
        "scopes": [] if tomb else json.loads(row["scopes"]),
        "expires_at": None if tomb else (min(eff) if eff else None),
        "status": row["status"], "preview": row["preview"],
        "meta": {} if tomb else json.loads(row["metadata"]),
        "ver": row["version"],
    }
    if row["environment"] != "live":
        rec["env"] = row["environment"]
    groups = json.loads(row["groups"])
    if groups and not tomb:
        rec["groups"] = groups
    if row["ratelimit"] and not tomb:
        rec["rl"] = json.loads(row["ratelimit"])
    if row.get("credits") and not tomb:
        rec["cr"] = json.loads(row["credits"])["counter"]
    return rec


def seed(state: Path, template: dict, template_kv: dict, n: int, now_ms: int, raw: Path) -> dict:
    """n clones of the template key in D1 (plus an audit entry each) and in a KV bulk file."""
    if edge_record(template) != template_kv:
        raise B.BenchError(f"the record built here differs from the worker's own:\n{edge_record(template)}\n"
                           f"{template_kv}")
    db = sqlite3.connect(d1_file(state))
    cols = [c[1] for c in db.execute("PRAGMA table_info(keys)")]
    rows, audit, kv, kinds = [], [], [], {"active": 0, "revoked": 0, "disabled": 0}
    rng = random.Random(15)
    for i in range(n):
        r = dict(template)
        # Ids sort randomly against creation order, as random ids do; creation times are 1 s apart,
        # all older than the template.
        r["id"] = "key_" + secrets.token_hex(12)
        r["name"] = f"scale-{i:06d}"
        r["hash"] = secrets.token_hex(32)
        r["preview"] = template["preview"][:-4] + "".join(rng.choice("abcdefghijkmnopqrstuvwxyz23456789")
                                                          for _ in range(4))
        r["created_at"] = now_ms - (n - i) * 1000
        r["last_used_at"] = None
        r["write_token"] = None
        r["version"] = 1
        if i % 100 == 7:
            r["status"], r["revoked_at"], r["version"] = "revoked", r["created_at"] + 500, 2
        elif i % 100 == 57:
            r["status"], r["version"] = "disabled", 2
        kinds[r["status"]] += 1
        rows.append(tuple(r[c] for c in cols))
        audit.append((r["created_at"], WS, "root", "key.create", r["id"],
                      json.dumps({"name": r["name"], "scopes": json.loads(r["scopes"]), "by": "admin-scale seed"})))
        kv.append({"key": r["hash"], "value": json.dumps(edge_record(r), separators=(",", ":"))})
    t = time.monotonic()
    with db:
        db.executemany(f"INSERT INTO keys ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
        db.executemany("INSERT INTO audit (at, workspace, actor, action, key_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                       audit)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    d1_s = time.monotonic() - t
    log(f"D1: {n} keys and {n} audit rows inserted in {d1_s:.1f}s ({kinds})")
    kv_file = raw / "kv-bulk.json"
    kv_file.write_text(json.dumps(kv))
    return {"kv_file": kv_file, "d1_s": round(d1_s, 2), "kinds": kinds,
            "ids": [x[cols.index("id")] for x in rows],
            "active_ids": [x[cols.index("id")] for x in rows if x[cols.index("status")] == "active"]}


def sqlite_analyze(state: Path) -> None:
    db = sqlite3.connect(d1_file(state))
    db.execute("ANALYZE")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


# ---------------------------------------------------------------------------------------------------
# the worker


def start(procs: B.Procs, s: B.System, raw: Path) -> Client:
    s.proc = None
    B.start_system(procs, s, raw, deadline_s=300)
    return Client(s.port, s.vars["ADMIN_TOKEN"])


def stop(procs: B.Procs, s: B.System) -> None:
    procs.stop(s.proc, s.name)
    procs.groups = [(n, p) for n, p in procs.groups if p is not s.proc]


def plans_text(c: Client, title: str) -> tuple[str, list[str]]:
    _, out = c.call("POST", f"/admin/v1/_plans?workspace={WS}")
    lines, problems = [f"## {title}", ""], []
    for st in out["statements"]:
        lines.append(f"### {st['name']}")
        lines.append(st["sql"])
        lines += [f"    {p}" for p in st["plan"]] or ["    (no plan rows: a plain INSERT)"]
        lines.append("")
        problems += st["problems"]
    return "\n".join(lines), problems


def time_op(samples: dict, label: str, fn, n: int) -> None:
    v = [fn(i) for i in range(n)]
    samples[label] = v
    p = pcts(v)
    log(f"{label}: p50 {p['p50']} ms, p99 {p['p99']} ms (n={p['n']})")


# ---------------------------------------------------------------------------------------------------


def render(meta: dict, rows: list[tuple[str, str, dict]], recon: dict) -> str:
    out = [
        f"# Admin at scale: {meta['keys']:,} keys in one workspace ({meta['stamp']})",
        "",
        f"keyward release build under `wrangler dev` (wrangler {meta['wrangler']}, local D1 and KV), "
        f"{meta['cpus']} cores; requests one at a time over one keep-alive connection to the worker's own "
        "workerd socket, root token, timed on the client (ms). Seeded in bulk: "
        f"{meta['kinds']['active']:,} active, {meta['kinds']['revoked']:,} revoked, "
        f"{meta['kinds']['disabled']:,} disabled keys, and one audit entry each.",
        "",
        "| operation | what | n | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for label, what, p in rows:
        out.append(f"| {label} | {what} | {p['n']} | {p['p50']} | {p['p99']} | {p['max']} |")
    out += [
        "",
        f"Full reconcile: {recon['pages']:,} pages of 100 keys in {recon['wall_s']:.1f} s "
        f"(written {recon['written']}, unchanged {recon['unchanged']:,}, completed {recon['completed']}, "
        f"failed {recon['failed']}): the seeded KV records are exactly what the worker writes.",
        "",
        f"Seeding: D1 {meta['seed']['d1_s']} s (SQLite inserts into the local database file), KV "
        f"{meta['seed']['kv_s']} s (`wrangler kv bulk put --local`). Query plans: plans.txt "
        f"(no statement scans a table or sorts: {meta['plan_problems'] or 'none found'}).",
        "",
    ]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000, help="keys to seed (default 100000)")
    ap.add_argument("--samples", type=int, default=200, help="timed calls per read operation (default 200)")
    ap.add_argument("--writes", type=int, default=100, help="timed creates and revokes (default 100 each)")
    ap.add_argument("--deep-page", type=int, default=500, help="the deep page's number (default 500)")
    ap.add_argument("--no-build", action="store_true", help="use the existing build/ instead of building")
    ap.add_argument("--out", help="results directory (default bench/results/<stamp>-admin-scale)")
    ap.add_argument("--exclusive", action="store_true",
                    help=f"hold the build lock ({B.LOCK_PATH}) for the whole run, so no other build competes")
    a = ap.parse_args()
    if a.deep_page * PAGE >= a.keys:
        ap.error("--deep-page * 50 must be below --keys")

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(a.out) if a.out else BENCH / "results" / f"{stamp}-admin-scale"
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="keyward-admin-scale-"))
    state = tmp / "state"
    procs = B.Procs(Path(os.environ.get("KEYWARD_BENCH_PGID_FILE") or raw / "pgids"))
    token = secrets.token_hex(32)
    lock = None

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    try:
        if a.exclusive and not B.LOCK_HELD:
            lock = open(B.LOCK_PATH, "a")
            if not B.try_flock(lock):
                log(f"--exclusive: waiting for {B.LOCK_PATH}")
                fcntl.flock(lock, fcntl.LOCK_EX)
            B._exclusive_lock = lock  # bench.py's build then knows the lock is held here
            log(f"--exclusive: holding {B.LOCK_PATH} until the end of the run")
        snapshot = tmp / "build"
        build = B.build_keyward(raw, snapshot, [] if a.no_build else ["release"])
        log(f"build: {build}")
        config = B.keyward_config(snapshot, "keyward-admin-scale", tmp / "wrangler.json")
        B.wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", str(state), "-c", str(config)],
                   ROOT, raw / "wrangler-setup.log")
        # ORIGIN_URL is never called (no gateway traffic); KEYWARD_CONFORMANCE enables the _plans route.
        s = B.System("keyward", ROOT, {"ADMIN_TOKEN": token, "ORIGIN_URL": "http://127.0.0.1:9",
                                       "KEYWARD_CONFORMANCE": "1"}, state, config)

        # 1. One key made by the worker: the template every seeded row and record is cloned from.
        c = start(procs, s, raw)
        _, made = c.call("POST", f"/admin/v1/keys?workspace={WS}", {"name": "template", "preset": "sdk"},
                         want=(201,))
        stop(procs, s)
        db = sqlite3.connect(d1_file(state))
        db.row_factory = sqlite3.Row
        template = dict(db.execute("SELECT * FROM keys WHERE id = ?", (made["id"],)).fetchone())
        db.close()
        got = subprocess.run(["wrangler", "kv", "key", "get", template["hash"], "--binding", "KV", "--local",
                              "--persist-to", str(state), "-c", str(config), "--text"],
                             cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        if got.returncode != 0:
            raise B.BenchError(f"wrangler kv key get failed: {got.stderr[-2000:]}")
        template_kv = json.loads(got.stdout.strip().splitlines()[-1])

        # 2. Bulk seed: D1 by SQLite, KV by wrangler (about 4 minutes for 100,000 records).
        now_ms = int(time.time() * 1000)
        seeded = seed(state, template, template_kv, a.keys, now_ms, raw)
        t = time.monotonic()
        B.wrangler(["kv", "bulk", "put", str(seeded["kv_file"]), "--binding", "KV", "--local", "--persist-to",
                    str(state), "-c", str(config)], ROOT, raw / "wrangler-setup.log", timeout=3600)
        kv_s = time.monotonic() - t
        log(f"KV: {a.keys} records put in {kv_s:.1f}s")
        seeded["kv_file"].unlink()

        # 3. Measurements.
        c = start(procs, s, raw)
        plans, problems = plans_text(c, f"{a.keys:,} keys, no statistics (as after the migrations)")
        samples: dict[str, list[float]] = {}
        rng = random.Random(1500)
        base = f"/admin/v1/keys?workspace={WS}&limit={PAGE}"

        def first_page(i):
            ms, body = c.call("GET", base)
            assert len(body["items"]) == PAGE and body["next_cursor"]
            return ms

        # Reconcile first: on freshly seeded data it is also the check that the seed is exact.
        recon = {"pages": 0, "written": 0, "unchanged": 0, "completed": 0, "failed": 0}
        page_ms, cursor, t = [], "", time.monotonic()
        while True:
            ms, body = c.call("POST", f"/admin/v1/reconcile?workspace={WS}"
                              + (f"&cursor={cursor}" if cursor else ""))
            page_ms.append(ms)
            recon["pages"] += 1
            for k in ("written", "unchanged", "completed"):
                recon[k] += body[k]
            recon["failed"] += len(body["failed"])
            cursor = body["next_cursor"]
            if recon["pages"] % 200 == 0:
                log(f"reconcile: {recon['pages']} pages, {recon}")
            if not cursor:
                break
        recon["wall_s"] = time.monotonic() - t
        samples["reconcile"] = page_ms
        log(f"full reconcile: {recon}")
        if recon["written"] or recon["completed"] or recon["failed"] or recon["unchanged"] != a.keys + 1:
            raise B.BenchError(f"the seeded data is not what the worker writes: reconcile {recon}")

        time_op(samples, "list first", first_page, a.samples)
        # Walk the cursor chain to the deep page (each step is a page read too).
        walk, cursor = [], None
        for _ in range(a.deep_page - 1):
            ms, body = c.call("GET", base + (f"&cursor={cursor}" if cursor else ""))
            walk.append(ms)
            cursor = body["next_cursor"]
        samples["list walk"] = walk
        deep = base + f"&cursor={cursor}"

        def deep_page(i):
            ms, body = c.call("GET", deep)
            assert len(body["items"]) == PAGE
            return ms

        time_op(samples, "list deep", deep_page, a.samples)
        time_op(samples, "list revoked", lambda i: c.call("GET", base + "&status=revoked")[0], a.samples)

        def expired(i):
            ms, body = c.call("GET", base + "&status=expired")
            assert body["items"] == [] and body["next_cursor"], body
            return ms

        time_op(samples, "list expired", expired, a.samples)
        time_op(samples, "audit first", lambda i: c.call("GET", f"/admin/v1/audit?workspace={WS}&limit={PAGE}")[0],
                a.samples)
        ids = seeded["ids"]
        time_op(samples, "get", lambda i: c.call("GET", f"/admin/v1/keys/{rng.choice(ids)}?workspace={WS}")[0],
                a.samples)
        time_op(samples, "create", lambda i: c.call("POST", f"/admin/v1/keys?workspace={WS}",
                                                    {"name": f"made-{stamp}-{i}", "preset": "sdk"},
                                                    want=(201,))[0], a.writes)
        victims = rng.sample(seeded["active_ids"], a.writes)
        time_op(samples, "revoke", lambda i: c.call("POST", f"/admin/v1/keys/{victims[i]}/revoke?workspace={WS}")[0],
                a.writes)
        stop(procs, s)

        # 4. The same plans once SQLite has statistics (D1 may run PRAGMA optimize, which analyzes).
        sqlite_analyze(state)
        c = start(procs, s, raw)
        analyzed, problems2 = plans_text(c, f"{a.keys:,} keys, after ANALYZE")
        stop(procs, s)

        meta = {
            "stamp": stamp, "keys": a.keys, "cpus": os.cpu_count(), "kinds": seeded["kinds"],
            "wrangler": B.tool_version(["wrangler", "--version"]).replace("⛅️", "").strip(),
            "seed": {"d1_s": seeded["d1_s"], "kv_s": round(kv_s, 1)}, "build": build,
            "plan_problems": problems + problems2, "deep_page": a.deep_page,
        }
        rows = [
            ("list, first page", "`GET /admin/v1/keys?limit=50`", pcts(samples["list first"])),
            (f"list, page {a.deep_page}",
             f"the same URL with the cursor of page {a.deep_page} ({(a.deep_page - 1) * PAGE:,} keys in)",
             pcts(samples["list deep"])),
            (f"list, pages 1-{a.deep_page - 1}", "the cursor chain walked once", pcts(samples["list walk"])),
            ("list ?status=revoked", "first page", pcts(samples["list revoked"])),
            ("list ?status=expired", "first page: none expired, so empty, with a cursor after one window of "
             "1,000 active keys", pcts(samples["list expired"])),
            ("audit, first page", "`GET /admin/v1/audit?limit=50`", pcts(samples["audit first"])),
            ("get", "`GET /admin/v1/keys/{id}`, random keys", pcts(samples["get"])),
            ("create", "`POST /admin/v1/keys`, preset sdk", pcts(samples["create"])),
            ("revoke", "`POST /admin/v1/keys/{id}/revoke`, random active keys", pcts(samples["revoke"])),
            ("reconcile, one page", f"`POST /admin/v1/reconcile?cursor=`: all {recon['pages']:,} pages of one "
             "full pass (100 keys each)", pcts(samples["reconcile"])),
        ]
        table = render(meta, rows, recon)
        (out / "table.md").write_text(table)
        (out / "plans.txt").write_text(
            "# SQLite's plan of every statement keyward's D1 store issues (EXPLAIN QUERY PLAN through the "
            "worker's binding, bound arguments), against the seeded database.\n\n"
            + plans + "\n" + analyzed + "\n")
        shutil.copy(out / "plans.txt", BENCH / "admin-scale" / "plans.txt")
        (out / "summary.json").write_text(json.dumps(
            {"meta": meta, "ops": {label: p for label, _, p in rows}, "reconcile": recon}, indent=2) + "\n")
        (raw / "samples.json").write_text(json.dumps(samples))
        print(table)
        if problems or problems2:
            log(f"PLAN PROBLEMS: {problems + problems2}")
            return 2
        return 0
    except B.BenchError as e:
        log(f"error: {e}")
        return 1
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        if lock:
            lock.close()


if __name__ == "__main__":
    sys.exit(main())
