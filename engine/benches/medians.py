#!/usr/bin/env python3
"""Print the median of every criterion benchmark under target/criterion as a
Markdown table, with the ratio of each brute-force or greedy reference to the
engine's own figure in the same group. Run after `cargo bench -p dispatch-engine`."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def fmt(ns: float) -> str:
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


rows = {}
for est in sorted(root.glob("**/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    median = json.loads(est.read_text())["median"]["point_estimate"]
    rows[bench["full_id"]] = median

REFERENCES = {"brute_force": "index", "greedy": "kuhn_munkres"}
print("| benchmark | median | reference / engine |")
print("|---|---:|---:|")
for name, median in rows.items():
    ratio = ""
    for ref, ours in REFERENCES.items():
        if f"/{ref}" in name:
            peer = rows.get(name.replace(f"/{ref}", f"/{ours}"))
            if peer:
                ratio = f"{median / peer:.1f}×"
    print(f"| `{name}` | {fmt(median)} | {ratio} |")
