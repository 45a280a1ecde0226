#!/usr/bin/env python3
"""Train Bazaar's spend model from a feature table and export it to ONNX.

The table comes from `bazaar run <scenario> --features --spend-horizon N` (features.csv:
customer_id, day, the feature columns, spend_next, label). `spend_next` is what the customer
spent in the N days after the snapshot day, in the scenario's currency (0 for a customer who
bought nothing, or churned). This script:

  1. splits customers (not rows) into training and held-out sets, as train_churn.py does;
  2. fits a standardised Tweedie regression with a log link (power 1.5: a point mass at zero
     and a long right tail, as spending has; predictions are never negative, and it scores as
     fast as the churn model) and, for comparison, histogram gradient boosting;
  3. reports MAE, RMSE, R2 and a calibration table (mean predicted against mean observed by
     decile of prediction) on the held-out customers;
  4. keeps the training reference for drift monitoring (reference.py);
  5. writes spend.onnx (input "features" float32 [N, F]; output "variable" float32 [N, 1], the
     expected spend over the horizon), spend.json (the same model card as churn.json, with
     "kind": "regression") and spend_golden.csv (held-out rows with scikit-learn's
     predictions, for Bazaar's golden test).

Usage:
  pip install scikit-learn skl2onnx onnxruntime pandas
  cargo run --release -- scenarios/diwali.ron --scale 2 --days 91 --features --spend-horizon 28 \
      --out out/spend-train
  python3 models/train_spend.py out/spend-train/features.csv --horizon 28 \
      --scenario "scenarios/diwali.ron --scale 2 --days 91 --features --spend-horizon 28"
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import TweedieRegressor
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from reference import reference
from train_churn import holdout_mask, libraries

MODEL_VERSION = 1
HOLDOUT_SHARE = 0.2
GOLDEN_ROWS = 200
LABELS = ("customer_id", "day", "label", "spend_next")


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list:
    """Mean predicted against mean observed spend per decile of prediction."""
    order = np.argsort(p, kind="stable")
    return [
        {
            "rows": int(len(chunk)),
            "mean_predicted": round(float(p[chunk].mean()), 2),
            "mean_observed": round(float(y[chunk].mean()), 2),
        }
        for chunk in np.array_split(order, bins)
    ]


def metrics(y: np.ndarray, p: np.ndarray) -> dict:
    return {
        "mae": round(float(mean_absolute_error(y, p)), 2),
        "rmse": round(float(np.sqrt(mean_squared_error(y, p))), 2),
        "r2": round(float(r2_score(y, p)), 4),
        "mean_observed": round(float(y.mean()), 2),
        "mean_predicted": round(float(p.mean()), 2),
        "zero_share": round(float((y == 0).mean()), 4),
        "calibration_deciles": calibration(y, p),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("features", type=Path, help="features.csv from `bazaar run --features`")
    ap.add_argument("--horizon", type=int, required=True, help="the --spend-horizon of the export, days")
    ap.add_argument("--scenario", default="", help="how the table was made (recorded in spend.json)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max-rows", type=int, default=0, help="subsample rows for a quick run (0: all)")
    ap.add_argument("--name", default="spend", help="file stem of the model, its card and golden rows")
    args = ap.parse_args()

    df = pd.read_csv(args.features)
    if "spend_next" not in df.columns:
        sys.exit(f"{args.features} has no spend_next column: export it with a Bazaar that writes one")
    if args.max_rows and len(df) > args.max_rows:
        df = df.sample(n=args.max_rows, random_state=args.seed).sort_index()
    feature_names = [c for c in df.columns if c not in LABELS]
    X = df[feature_names].to_numpy(dtype=np.float32)
    y = df["spend_next"].to_numpy(dtype=np.float64)
    test = holdout_mask(df["customer_id"].to_numpy(), args.seed)
    X_train, y_train, X_test, y_test = X[~test], y[~test], X[test], y[test]
    print(f"{len(df)} rows, {len(feature_names)} features, mean spend {y.mean():.2f}; "
          f"train {len(y_train)}, held out {len(y_test)} (by customer)", file=sys.stderr)

    model = Pipeline([
        ("scale", StandardScaler()),
        ("tweedie", TweedieRegressor(power=1.5, link="log", alpha=1e-4, max_iter=1000)),
    ])
    model.fit(X_train, y_train)
    tw_metrics = metrics(y_test, model.predict(X_test))

    gb = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.1, random_state=args.seed)
    gb.fit(X_train, y_train)
    gb_metrics = metrics(y_test, gb.predict(X_test))
    print(f"Tweedie regression: MAE {tw_metrics['mae']}, R2 {tw_metrics['r2']}; "
          f"gradient boosting: MAE {gb_metrics['mae']}, R2 {gb_metrics['r2']}", file=sys.stderr)

    onx = to_onnx(
        model,
        initial_types=[("features", FloatTensorType([None, len(feature_names)]))],
        target_opset=17,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / f"{args.name}.onnx"
    onnx_path.write_bytes(onx.SerializeToString())
    output = onx.graph.output[0].name

    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(X_test), size=min(GOLDEN_ROWS, len(X_test)), replace=False)
    golden_X = X_test[pick]
    golden_p = model.predict(golden_X)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_p = sess.run([output], {"features": golden_X})[0][:, 0]
    max_rel = float((np.abs(ort_p - golden_p) / np.maximum(1.0, np.abs(golden_p))).max())
    print(f"ONNX Runtime vs scikit-learn on {len(pick)} golden rows: max relative diff {max_rel:.2e}",
          file=sys.stderr)
    golden = pd.DataFrame(golden_X, columns=feature_names)
    golden["sklearn_prediction"] = golden_p
    golden.to_csv(args.out / f"{args.name}_golden.csv", index=False, float_format="%.9g")

    spec = {
        "version": MODEL_VERSION,
        "kind": "regression",
        "model": f"{args.name}.onnx",
        "input": "features",
        "output": output,
        "features": feature_names,
        "scaling": "standardisation is the model's first step (inside the ONNX graph); feed raw features",
        "label": {
            "definition": f"what the customer spent in the {args.horizon} days after the snapshot day, "
                          "in the scenario's currency",
            "horizon_days": args.horizon,
        },
        "algorithm": "StandardScaler + TweedieRegressor(power=1.5, link='log', alpha=1e-4)",
        "training": {
            "table": args.features.name,
            "made_with": args.scenario,
            "rows": int(len(df)),
            "held_out_customers_share": HOLDOUT_SHARE,
            "held_out_rows": int(test.sum()),
            "seed": args.seed,
        },
        "metrics_held_out": tw_metrics,
        "reference": reference(X_train, feature_names, model.predict(X_train), args.scenario),
        "comparison_gradient_boosting_held_out": {k: gb_metrics[k] for k in ("mae", "rmse", "r2")},
        "onnx_vs_sklearn_max_relative_diff": max_rel,
        "libraries": libraries(),
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(spec, indent=2) + "\n")
    print(f"wrote {onnx_path}, {args.name}.json, {args.name}_golden.csv", file=sys.stderr)


if __name__ == "__main__":
    main()
