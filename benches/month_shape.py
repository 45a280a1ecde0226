#!/usr/bin/env python3
"""Prints each month's revenue in days 1-7, 8-14, 15-21 and 22-28, against days 8-14, from
an output folder's daily_metrics.csv: how spending moves between paydays.

    bazaar run benches/paydays.ron --no-report --out out/paydays
    python3 benches/month_shape.py out/paydays
"""
import collections
import csv
import sys

weeks = collections.defaultdict(lambda: [0.0] * 4)
with open(f"{sys.argv[1]}/daily_metrics.csv", newline="") as f:
    for row in csv.DictReader(f):
        year_month, day = row["date"][:7], int(row["date"][8:10])
        if day <= 28:
            weeks[year_month][(day - 1) // 7] += float(row["revenue"])
for month, w in sorted(weeks.items()):
    print(month, " ".join(f"{x / w[1]:.3f}" for x in w))
