"""Reads back what Bazaar logged to an MLflow tracking server, with MLflow's own client, for
tests/suite/mlflow.rs: every run of an experiment with its status, params, tags, latest metrics,
the history of `daily.revenue`, and its artifacts.

  python mlflow_read.py URI EXPERIMENT  ->  JSON on stdout
"""

import json
import sys

from mlflow.tracking import MlflowClient

uri, name = sys.argv[1], sys.argv[2]
client = MlflowClient(tracking_uri=uri)
experiment = client.get_experiment_by_name(name)
runs = []
if experiment is not None:
    for run in client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]):
        def artifacts(path=None):
            out = []
            for f in client.list_artifacts(run.info.run_id, path):
                out.extend(artifacts(f.path) if f.is_dir else [f.path])
            return out

        history = client.get_metric_history(run.info.run_id, "daily.revenue")
        runs.append({
            "run_id": run.info.run_id,
            "status": run.info.status,
            "name": run.info.run_name,
            "params": run.data.params,
            "tags": run.data.tags,
            "metrics": run.data.metrics,
            "daily_revenue": [[m.step, m.value] for m in sorted(history, key=lambda m: m.step)],
            "artifacts": sorted(artifacts()),
        })
json.dump(runs, sys.stdout)
