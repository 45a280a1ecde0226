#!/usr/bin/env python3
"""Prints a run's timings.json (`bazaar run ... --timings`) as two Markdown tables: the main
thread's phases, and each output part's stages, largest first.

    python3 benches/timings.py OUT_DIR/timings.json
"""
import json
import sys

t = json.load(open(sys.argv[1]))
print(f"threads {t['threads']}, wall {t['wall_seconds']:.2f} s\n")
print("| phase | s |\n|---|---:|")
for p in t["phases"]:
    print(f"| {p['name']} | {p['seconds']:.2f} |")
print("\n| part | stage | s | times |\n|---|---|---:|---:|")
rows = [(part, stage, s) for part, stages in t["parts"].items() for stage, s in stages.items()]
for part, stage, s in sorted(rows, key=lambda r: -r[2]["seconds"]):
    if s["seconds"] >= 0.005:
        print(f"| {part} | {stage} | {s['seconds']:.2f} | {s['count']} |")
