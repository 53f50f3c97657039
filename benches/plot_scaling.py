#!/usr/bin/env python3
"""Plots the results of `cargo bench -p rbdj-benches --bench scaling` as PNGs.

Usage: python3 benches/plot_scaling.py [JSON ...] [--out DIR]

Without JSON arguments it reads, from `target/rbdj-bench/`, `scaling.json` and the per-part
files a filtered run writes (`scaling-journal.json`, `scaling-agent.json`); when several hold
the same part, the most recently modified one wins (the idle panel of the agent plot shows
every agent part given, by its `variant`). Writes `scaling_journal.png` and
`scaling_agent.png` into DIR (default `docs/bench/`). Needs matplotlib.
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(paths):
    """The newest part of each kind, and every `agent` part (by variant) for comparison."""
    parts = {}
    agents = {}
    for path in sorted((p for p in paths if os.path.exists(p)), key=os.path.getmtime):
        with open(path) as f:
            data = json.load(f)
        parts.update(data)
        if "agent" in data:
            agents[data["agent"].get("variant", os.path.basename(path))] = data["agent"]
    return parts, agents


def plot_journal(journal, out):
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    for s in journal["series"]:
        xs = [p[0] for p in s["us_per_append"]]
        ys = [p[1] for p in s["us_per_append"]]
        ax.plot(xs, ys, marker="o", markersize=3, label=s["label"])
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("entries in the journal (end of each measured window)")
    ax.set_ylabel("wall µs per append")
    ax.set_title(
        f"Append cost as the journal grows ({journal['payload_bytes']} B writes, MemStore, no trim)"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_agent(agent, agents, out):
    rows = sorted(agent["rows"], key=lambda r: r["images"])
    xs = [r["images"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=100)
    a1.plot(
        xs,
        [r["ingest_wall_us"] for r in rows],
        "o:",
        color="gray",
        label=f"ingest alone, agent stopped ({agent.get('variant', '')})",
    )
    for variant, data in agents.items():
        vr = sorted(data["rows"], key=lambda r: r["images"])
        vx = [r["images"] for r in vr]
        line = a1.plot(
            vx,
            [r["live_wall_us"] for r in vr],
            "^-",
            markersize=4,
            label=f"live, ingest → all applied ({variant})",
        )[0]
        a1.plot(
            vx,
            [r["backlog_span_us"] for r in vr],
            "s--",
            markersize=4,
            color=line.get_color(),
            label=f"backlog replay, first → last applied ({variant})",
        )
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("images mirrored by one agent")
    a1.set_ylabel("wall µs per event")
    a1.set_title(
        f"{agent['total_events']} × {agent['io_bytes'] // 1024} KiB writes spread over N images",
        fontsize=10,
    )
    a1.grid(True, which="both", alpha=0.3)
    a1.legend(fontsize=6)
    for variant, data in agents.items():
        vr = sorted(data["rows"], key=lambda r: r["images"])
        vx = [r["images"] for r in vr]
        line = a2.plot(
            vx,
            [r["idle_cpu_pct"] / r["images"] for r in vr],
            marker="o",
            label=f"CPU % / image ({variant})",
        )[0]
        a2.plot(
            vx,
            [r["idle_reads_per_s"] / r["images"] / 1000 for r in vr],
            "s--",
            color=line.get_color(),
            label=f"k store reads/s / image ({variant})",
        )
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("images mirrored by one agent")
    a2.set_ylabel("per image (flat = linear total)")
    a2.set_title("Idle agent, per image (all replicas caught up)")
    a2.grid(True, which="both", alpha=0.3)
    a2.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv):
    out_dir = os.path.join(ROOT, "docs", "bench")
    paths = []
    i = 0
    while i < len(argv):
        if argv[i] == "--out":
            out_dir = argv[i + 1]
            i += 2
            continue
        paths.append(argv[i])
        i += 1
    if not paths:
        base = os.path.join(ROOT, "target", "rbdj-bench")
        paths = [
            os.path.join(base, n)
            for n in ("scaling.json", "scaling-journal.json", "scaling-agent.json")
        ]
    parts, agents = load(paths)
    if not parts:
        sys.exit("no scaling results found; run `cargo bench -p rbdj-benches --bench scaling`")
    os.makedirs(out_dir, exist_ok=True)
    if "journal" in parts:
        path = os.path.join(out_dir, "scaling_journal.png")
        plot_journal(parts["journal"], path)
        print(f"wrote {path} ({os.path.getsize(path) // 1024} KiB)")
    if "agent" in parts:
        path = os.path.join(out_dir, "scaling_agent.png")
        plot_agent(parts["agent"], agents, path)
        print(f"wrote {path} ({os.path.getsize(path) // 1024} KiB)")


if __name__ == "__main__":
    main(sys.argv[1:])
