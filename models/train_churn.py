#!/usr/bin/env python3
"""Train Bazaar's churn model from a feature table and export it to ONNX.

The table comes from `bazaar run <scenario> --features` (features.csv: customer_id, day, the
feature columns, label). The label is 1 when the customer churned within the horizon after the
snapshot day. This script:

  1. splits customers (not rows) into training and held-out sets, so no customer's snapshots
     appear on both sides;
  2. fits a standardised logistic regression (fast to score: hundreds of millions of rows/s in
     ONNX Runtime) and, for comparison, a histogram gradient-boosting model;
  3. reports AUC, log-loss, Brier score and a calibration table on the held-out customers;
  4. writes churn.onnx (input "features" float32 [N, F]; outputs "label" int64 [N] and
     "probabilities" float32 [N, 2]), churn.json (feature names and order, label definition,
     metrics, provenance, library versions, the training reference for drift monitoring from
     reference.py) and churn_golden.csv (held-out rows with
     scikit-learn's probabilities, for Bazaar's golden test).

Usage:
  pip install scikit-learn skl2onnx onnxruntime pandas
  cargo run --release -- scenarios/diwali.ron --scale 2 --days 91 --features --out out/churn-train
  python3 models/train_churn.py out/churn-train/features.csv --horizon 14 \
      --scenario "scenarios/diwali.ron --scale 2 --days 91"

To train on your own data, produce a CSV with the same columns (see churn.json's "features")
and a 0/1 "label"; the feature definitions are in docs/churn.md.
"""

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import skl2onnx
import onnx
import onnxruntime as ort
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from reference import reference

MODEL_VERSION = 1
HOLDOUT_SHARE = 0.2
GOLDEN_ROWS = 200


def libraries() -> dict:
    """The versions a model was made with, for its card."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def holdout_mask(customer_ids: np.ndarray, seed: int) -> np.ndarray:
    """A stable per-customer split: hash(seed, id) decides, whatever the row order."""
    keys = [hashlib.blake2b(f"{seed}:{c}".encode(), digest_size=8).digest() for c in customer_ids]
    u = np.array([int.from_bytes(k, "little") / 2**64 for k in keys])
    return u < HOLDOUT_SHARE


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list:
    """Mean predicted vs observed rate per decile of predicted probability."""
    order = np.argsort(p)
    out = []
    for chunk in np.array_split(order, bins):
        out.append({
            "rows": int(len(chunk)),
            "mean_predicted": round(float(p[chunk].mean()), 6),
            "observed_rate": round(float(y[chunk].mean()), 6),
        })
    return out


def metrics(y: np.ndarray, p: np.ndarray) -> dict:
    return {
        "auc": round(float(roc_auc_score(y, p)), 4),
        "log_loss": round(float(log_loss(y, p)), 5),
        "brier": round(float(brier_score_loss(y, p)), 6),
        "base_rate": round(float(y.mean()), 6),
        "mean_predicted": round(float(p.mean()), 6),
        "calibration_deciles": calibration(y, p),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("features", type=Path, help="features.csv from `bazaar run --features`")
    ap.add_argument("--horizon", type=int, required=True, help="label horizon in days used for the export")
    ap.add_argument("--scenario", default="", help="how the table was made (recorded in churn.json)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max-rows", type=int, default=0, help="subsample rows for a quick run (0: all)")
    ap.add_argument("--balanced", action="store_true",
                    help="weight the classes equally (a challenger: it ranks customers differently, "
                         "its probabilities are not calibrated)")
    ap.add_argument("--name", default="churn", help="file stem of the model, its card and golden rows")
    ap.add_argument("--since-day", type=int, default=0,
                    help="train on the snapshots of this day of the run and later only (the world "
                         "after a drift; `bazaar mlops` passes the first drifted scoring's day)")
    args = ap.parse_args()

    df = pd.read_csv(args.features)
    if args.since_day:
        df = df[df["day"] >= args.since_day].reset_index(drop=True)
        if df.empty or df["label"].nunique() < 2:
            sys.exit(f"error: the snapshots from day {args.since_day} on are too few to train on "
                     f"({len(df)} rows, {int(df['label'].sum()) if len(df) else 0} positive); "
                     "lengthen the run or snapshot more often")
    if args.max_rows and len(df) > args.max_rows:
        df = df.sample(n=args.max_rows, random_state=args.seed).sort_index()
    feature_names = [c for c in df.columns if c not in ("customer_id", "day", "label", "spend_next")]
    X = df[feature_names].to_numpy(dtype=np.float32)
    y = df["label"].to_numpy(dtype=np.int64)
    test = holdout_mask(df["customer_id"].to_numpy(), args.seed)
    X_train, y_train, X_test, y_test = X[~test], y[~test], X[test], y[test]
    print(f"{len(df)} rows, {len(feature_names)} features, positives {y.mean():.4f}; "
          f"train {len(y_train)}, held out {len(y_test)} (by customer)", file=sys.stderr)

    model = Pipeline([
        ("scale", StandardScaler()),
        ("logit", LogisticRegression(C=1.0, max_iter=2000,
                                     class_weight="balanced" if args.balanced else None)),
    ])
    model.fit(X_train, y_train)
    p_lr = model.predict_proba(X_test)[:, 1]
    lr_metrics = metrics(y_test, p_lr)

    gb = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=args.seed)
    gb.fit(X_train, y_train)
    gb_metrics = metrics(y_test, gb.predict_proba(X_test)[:, 1])
    print(f"logistic regression: AUC {lr_metrics['auc']}, log-loss {lr_metrics['log_loss']}; "
          f"gradient boosting: AUC {gb_metrics['auc']}, log-loss {gb_metrics['log_loss']}", file=sys.stderr)

    onx = to_onnx(
        model,
        initial_types=[("features", FloatTensorType([None, len(feature_names)]))],
        options={"zipmap": False},
        target_opset=17,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / f"{args.name}.onnx"
    onnx_path.write_bytes(onx.SerializeToString())

    # Golden rows: held-out features and scikit-learn's probabilities, checked here against
    # ONNX Runtime and in Bazaar's tests against Bazaar's scores.
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(X_test), size=min(GOLDEN_ROWS, len(X_test)), replace=False)
    golden_X = X_test[pick]
    golden_p = model.predict_proba(golden_X)[:, 1]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_p = sess.run(["probabilities"], {"features": golden_X})[0][:, 1]
    max_diff = float(np.abs(ort_p - golden_p).max())
    print(f"ONNX Runtime vs scikit-learn on {len(pick)} golden rows: max |diff| {max_diff:.2e}", file=sys.stderr)
    golden = pd.DataFrame(golden_X, columns=feature_names)
    golden["sklearn_probability"] = golden_p
    golden.to_csv(args.out / f"{args.name}_golden.csv", index=False, float_format="%.9g")

    spec = {
        "version": MODEL_VERSION,
        "model": f"{args.name}.onnx",
        "input": "features",
        "output": "probabilities",
        "probability_column": 1,
        "features": feature_names,
        "scaling": "standardisation is the model's first step (inside the ONNX graph); feed raw features",
        "label": {
            "definition": f"1 if the customer churned within the {args.horizon} days after the snapshot day",
            "horizon_days": args.horizon,
        },
        "algorithm": "StandardScaler + LogisticRegression(C=1.0"
                     + (", class_weight='balanced')" if args.balanced else ")"),
        "training": {
            "table": args.features.name,
            "made_with": args.scenario,
            "rows": int(len(df)),
            "since_day": args.since_day,
            "positives": int(y.sum()),
            "held_out_customers_share": HOLDOUT_SHARE,
            "held_out_rows": int(test.sum()),
            "seed": args.seed,
        },
        "metrics_held_out": lr_metrics,
        "reference": reference(X_train, feature_names, model.predict_proba(X_train)[:, 1], args.scenario),
        "comparison_gradient_boosting_held_out": {k: gb_metrics[k] for k in ("auc", "log_loss", "brier")},
        "onnx_vs_sklearn_max_abs_diff": max_diff,
        "libraries": libraries(),
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(spec, indent=2) + "\n")
    print(f"wrote {onnx_path}, {args.name}.json, {args.name}_golden.csv", file=sys.stderr)


if __name__ == "__main__":
    main()
