#!/usr/bin/env python3
"""The training reference a model card keeps for drift monitoring.

Bazaar compares the features it scores (and the scores themselves) with the data a model was
trained on: per feature, PSI, the Kolmogorov-Smirnov statistic and the Jensen-Shannon
distance (models/README.md, "Drift"). The card cannot hold the training table, so it holds each
feature's quantiles at POINTS evenly spaced levels (the inverted empirical CDF: every value
is one the data took, so a 0/1 feature stays 0/1), and the same of the model's scores.

train_churn.py and train_spend.py call `reference()`; run as a script, this attaches a
reference made from a feature table to an existing card whose training table is gone:

  python3 models/reference.py models/churn.json out/churn-train/features.csv \
      --made-with "scenarios/diwali.ron --scale 2 --days 91 --features"
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

POINTS = 201
LABELS = ("customer_id", "day", "label", "spend_next")


def quantiles(values: np.ndarray) -> list:
    levels = np.linspace(0.0, 1.0, POINTS)
    q = np.quantile(np.asarray(values, dtype=np.float64), levels, method="inverted_cdf")
    return [float(v) for v in q]


def reference(X: np.ndarray, names: list, scores: np.ndarray, made_with: str) -> dict:
    """The card's `reference` block: quantiles of each feature column and of the scores."""
    return {
        "points": POINTS,
        "rows": int(len(X)),
        "made_with": made_with,
        "features": {name: quantiles(X[:, j]) for j, name in enumerate(names)},
        "score": quantiles(scores),
    }


def main() -> None:
    import onnxruntime as ort
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("card", type=Path, help="the model card (churn.json, spend.json)")
    ap.add_argument("features", type=Path, help="features.csv from `bazaar run --features`")
    ap.add_argument("--made-with", required=True, help="how the table was made (recorded in the card)")
    args = ap.parse_args()

    card = json.loads(args.card.read_text())
    df = pd.read_csv(args.features)
    names = card["features"]
    missing = [n for n in names if n not in df.columns]
    if missing:
        sys.exit(f"{args.features} lacks the card's features {missing}")
    X = df[names].to_numpy(dtype=np.float32)
    sess = ort.InferenceSession(str(args.card.parent / card["model"]), providers=["CPUExecutionProvider"])
    out = sess.run([card["output"]], {card["input"]: X})[0]
    scores = out[:, card.get("probability_column", 0)] if out.ndim == 2 else out
    card["reference"] = reference(X, names, scores, args.made_with)
    args.card.write_text(json.dumps(card, indent=2) + "\n")
    print(f"added a reference of {len(X)} rows to {args.card}", file=sys.stderr)


if __name__ == "__main__":
    main()
