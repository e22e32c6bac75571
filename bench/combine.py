#!/usr/bin/env python3
"""Medians over several full bench runs (issue #15: targets are judged on medians of at least 3
runs, each run's own table committed).

    python3 bench/combine.py bench/results/A bench/results/B bench/results/C [--out DIR]

For every scenario/connections/system cell found in the runs' summary.json: the median over runs
of req/s, p99, CPU per request and their ratios to the passthrough and to the JavaScript verifier,
each with its min-max over runs. Then the targets: keyward's valid-key p99 <= 1.25x the
passthrough's, and keyward >= the JS verifier in req/s and <= it in CPU per request in every cell
both ran. Writes DIR/table.md and DIR/summary.json (default bench/results/<first>..<last>-combined).
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

P99_GOAL = 1.25
VALID_GOAL = 0.9
FIELDS = [
    ("rps", "req/s", 0),
    ("p99_ms", "p99 ms", 1),
    ("cpu_us", "CPU us/req", 0),
    ("rps_vs_pass", "req/s vs pass", 2),
    ("cpu_vs_pass", "CPU vs pass", 2),
    ("p99_vs_pass", "p99 vs pass", 2),
    ("rps_vs_js", "req/s vs JS", 2),
    ("cpu_vs_js", "CPU vs JS", 2),
]


def fmt(v, digits):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def cells_of(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    cells = {(c["scenario"], c["conns"], c["system"]): c for c in summary["cells"]}
    # Older runs lack the p99 ratio and the JS ratios of every system; derive what is derivable.
    for (sc, conns, sy), c in cells.items():
        base = cells.get((sc, conns, "passthrough"))
        if c.get("p99_vs_pass") is None and base and base.get("p99_ms"):
            c["p99_vs_pass"] = c["p99_ms"] / base["p99_ms"]
    return cells


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="bench/results/<stamp> directories")
    ap.add_argument("--out", help="output directory")
    a = ap.parse_args()
    dirs = [Path(d) for d in a.runs]
    runs = [cells_of(d) for d in dirs]
    keys = []
    for r in runs:
        for k in r:
            if k not in keys:
                keys.append(k)
    combined = {}
    for k in keys:
        present = [r[k] for r in runs if k in r]
        row = {"scenario": k[0], "conns": k[1], "system": k[2], "runs": len(present)}
        for f, _, _ in FIELDS:
            vals = [c[f] for c in present if c.get(f) is not None]
            row[f] = statistics.median(vals) if vals else None
            row[f + "_runs"] = vals
        combined[k] = row

    L = [f"# keyward benchmark: medians over {len(dirs)} runs", ""]
    L.append("Runs: " + ", ".join(f"`{d.name}`" for d in dirs) + " (each has its own table.md).")
    L.append("Each value: the median over runs of that run's median over rounds, then (min-max over runs).")
    L.append("")
    L.append("| scenario | conns | system | runs | " + " | ".join(h for _, h, _ in FIELDS) + " |")
    L.append("|---|---:|---|---:|" + "---:|" * len(FIELDS))
    for k in keys:
        row = combined[k]
        vals = []
        for f, _, d in FIELDS:
            v, vs = row[f], row[f + "_runs"]
            vals.append(fmt(v, d) + (f" ({fmt(min(vs), d)}-{fmt(max(vs), d)})" if len(vs) > 1 else ""))
        L.append(f"| {k[0]} | {k[1]} | {k[2]} | {row['runs']} | " + " | ".join(vals) + " |")
    L.append("")

    targets = []
    for k, row in combined.items():
        sc, conns, sy = k
        if sy != "keyward":
            continue
        if sc == "valid" and row["p99_vs_pass"] is not None:
            ok = row["p99_vs_pass"] <= P99_GOAL
            targets.append((ok, f"valid/{conns}: p99 {row['p99_vs_pass']:.2f}x passthrough (goal <= {P99_GOAL})"))
        if sc == "valid" and row["rps_vs_pass"] is not None:
            ok = row["rps_vs_pass"] >= VALID_GOAL
            targets.append((ok, f"valid/{conns}: req/s {row['rps_vs_pass']:.2f}x passthrough (goal >= {VALID_GOAL})"))
        if row["rps_vs_js"] is not None:
            ok = row["rps_vs_js"] >= 1.0 and (row["cpu_vs_js"] or 0) <= 1.0
            targets.append((ok, f"{sc}/{conns}: req/s {row['rps_vs_js']:.2f}x, CPU {row['cpu_vs_js']:.2f}x the JS "
                                f"verifier (goal >= 1 and <= 1)"))
    if targets:
        L.append("Targets (medians over runs):")
        L.append("")
        for ok, text in targets:
            L.append(f"- {'met' if ok else '**missed**'}: {text}")
        L.append("")
    out = Path(a.out) if a.out else dirs[0].parent / f"{dirs[0].name}..{dirs[-1].name}-combined"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("\n".join(L))
    (out / "summary.json").write_text(json.dumps(
        {"runs": [d.name for d in dirs],
         "cells": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in combined.values()],
         "targets": [{"met": ok, "text": t} for ok, t in targets]}, indent=2) + "\n")
    print("\n".join(L))
    print(f"wrote {out / 'table.md'}", file=sys.stderr)
    return 0 if all(ok for ok, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
