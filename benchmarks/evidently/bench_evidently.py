"""Evidently's DataDriftPreset on the monitor's columns; runs in .venvs/evidently (pandas < 3).

Usage: bench_evidently.py DATA.npz RUNS  -> one JSON object on stdout:
{"version", "import_seconds", "run_seconds" (median), "peak_rss_mb",
 "verdicts": {column: [method, score, drifted]}}
DATA.npz holds `ref__<column>` and `cur__<column>` arrays (written by benchmarks/run.py).
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time

CATEGORICAL = {"PULocationID", "DOLocationID", "pickup_weekday", "pu_borough", "do_borough"}


def main() -> None:
    path, runs = sys.argv[1], int(sys.argv[2])
    import numpy as np
    import pandas as pd

    started = time.perf_counter()
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    import_seconds = time.perf_counter() - started

    data = np.load(path)
    columns = [key.removeprefix("ref__") for key in data.files if key.startswith("ref__")]

    def frame(prefix: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                c: data[prefix + c].astype(int).astype(str) if c in CATEGORICAL else data[prefix + c]
                for c in columns
            }
        )

    reference, current = frame("ref__"), frame("cur__")
    definition = DataDefinition(
        numerical_columns=[c for c in columns if c not in CATEGORICAL],
        categorical_columns=[c for c in columns if c in CATEGORICAL],
    )
    times, snapshot = [], None
    for _ in range(runs):
        started = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        times.append(time.perf_counter() - started)
    verdicts = {}
    for metric in snapshot.dict()["metrics"] if snapshot else []:
        config = metric["config"]
        if config["type"] != "evidently:metric_v2:ValueDrift":
            continue
        method, score, threshold = config["method"], float(metric["value"]), float(config["threshold"])
        drifted = score < threshold if "p_value" in method or "test" in method.lower() else score >= threshold
        verdicts[config["column"]] = [method, round(score, 4), drifted]
    print(
        json.dumps(
            {
                "version": evidently.__version__,
                "import_seconds": import_seconds,
                "run_seconds": statistics.median(times),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "verdicts": verdicts,
            }
        )
    )


if __name__ == "__main__":
    main()
