#!/usr/bin/env python3
"""Prints the same-run ratios of the rbdj criterion benchmarks from target/criterion.

Usage: python3 benches/ratios.py [journal_overhead|append_limit] [--markdown]

A ratio is baseline time / contestant time per operation, i.e. contestant throughput divided
by baseline throughput (1.0 = as fast as the baseline).
"""
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "criterion")

# group -> (baseline function, [contestants], what one operation is)
GROUPS = {
    "journal_overhead": ("unjournaled", ["journaled"], "write"),
    "append_limit_mem": ("memcpy_crc32c", ["alloc_memcpy_crc32c", "recorder"], "payload"),
    "append_limit_dir": ("write_fdatasync", ["dirstore_append", "recorder"], "batch"),
}


def mean_ns(group, function, param):
    path = os.path.join(ROOT, group, function, param, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["mean"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def main():
    wanted = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv
    for group, (base, contestants, unit) in GROUPS.items():
        if wanted and not any(group.startswith(w) for w in wanted):
            continue
        base_dir = os.path.join(ROOT, group, base)
        if not os.path.isdir(base_dir):
            continue
        params = sorted(p for p in os.listdir(base_dir) if p != "report")
        print(f"\n{group} (ratio = {base} time / contestant time per {unit})")
        head = ["config", f"{base} ops/s"]
        for c in contestants:
            head += [f"{c} ops/s", f"{c} ratio"]
        if markdown:
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
        else:
            print("  ".join(f"{h:>22}" for h in head))
        for p in params:
            b = mean_ns(group, base, p)
            if b is None:
                continue
            row = [p, f"{1e9 / b:,.0f}"]
            for c in contestants:
                t = mean_ns(group, c, p)
                row += ["-", "-"] if t is None else [f"{1e9 / t:,.0f}", f"{b / t:.2f}"]
            if markdown:
                print("| " + " | ".join(row) + " |")
            else:
                print("  ".join(f"{x:>22}" for x in row))


if __name__ == "__main__":
    main()
