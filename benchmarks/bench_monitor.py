"""Monitor benchmark: drift over 100k and 1M captured predictions (2023-03 resampled) vs a 2021-01 profile.

Prints JSON lines {"metric", "value", "unit"}. Each figure is measured in a fresh subprocess that
imports only what the Lambda imports (numpy, scipy, lambda_monitor), so its peak RSS is the monitor's.
The drift time covers the whole verdict: features of the rows, the seasonal mixture and the null
draws that calibrate each threshold at the window's n (no calibration is cached between runs).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (100_000, 1_000_000)
RUNS = 5


def _emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 4), "unit": unit}), flush=True)


def prepare(directory: Path, rows: int) -> None:
    import numpy as np

    from tests.monitor_months import month_columns, reference_profile_dict, take, valid_rows

    (directory / "profile.json").write_text(
        json.dumps(reference_profile_dict(valid_rows(month_columns("2021-01")), day_excess=True))
    )
    current = valid_rows(month_columns("2023-03"))
    index = np.random.default_rng(0).integers(0, len(current["prediction"]), rows)
    sample = take(current, index)
    sample["ride_id"] = np.arange(rows)
    np.savez(directory / "window.npz", **sample)  # type: ignore[arg-type]


def _rows(directory: Path):
    import numpy as np

    from tests.monitor_months import version_rows

    data = np.load(directory / "window.npz")
    return version_rows({name: data[name] for name in data.files})


def child_drift(directory: Path) -> None:
    from lambda_monitor import drift
    from lambda_monitor.window import current_columns
    from trip_core import calibration
    from trip_core.profile import read_profile

    profile = read_profile((directory / "profile.json").read_text())
    rows = _rows(directory)
    times = []
    for _ in range(RUNS):
        calibration._null.cache_clear()  # every run pays for its calibration
        start = time.perf_counter()
        result = drift.dataset_drift(profile, current_columns(rows))
        times.append(time.perf_counter() - start)
    columns = {**result.features, "prediction": result.prediction}
    verdicts = {name: [c.statistic, round(c.distance, 4), c.drifted] for name, c in columns.items() if c}
    print(json.dumps({"median": statistics.median(times), "peak_kb": _peak_kb(), "verdicts": verdicts}))


def child_read(directory: Path) -> None:
    from lambda_monitor.window import rows_by_version
    from tests.monitor_months import capture_batches
    from trip_core.capture import decode_capture, encode_capture

    rows = _rows(directory)
    expected = len(rows.ride_id)
    columns = {
        "ride_id": rows.ride_id,
        "pickup_datetime": rows.pickup_datetime,
        "PULocationID": rows.pu_location_id,
        "DOLocationID": rows.do_location_id,
        "trip_distance": rows.trip_distance,
        "prediction": rows.prediction,
    }
    objects = [
        encode_capture(b) for b in capture_batches(columns, "1", "2023-03-06T14:30:00Z", batch_size=500)
    ]
    del rows, columns
    times = []
    for _ in range(3):
        start = time.perf_counter()
        window = rows_by_version(decode_capture(data) for data in objects)
        times.append(time.perf_counter() - start)
    assert len(window["1"]) == expected
    print(json.dumps({"median": statistics.median(times), "peak_kb": _peak_kb(), "objects": len(objects),
                      "megabytes": sum(map(len, objects)) / 1e6}))  # fmt: skip


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(kind: str, directory: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, kind, str(directory)], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def init_time() -> float:
    env = {**os.environ, "MODELS_BUCKET": "m", "CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r",
           "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    code = "import time; t = time.perf_counter(); import lambda_monitor.app; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                 text=True).stdout.strip()) for _ in range(3)]  # fmt: skip
    return statistics.median(runs)


def main() -> None:
    if len(sys.argv) == 3:
        {"drift": child_drift, "read": child_read}[sys.argv[1]](Path(sys.argv[2]))
        return
    for rows in SIZES:
        label = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}m"
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            prepare(directory, rows)
            drift = _child("drift", directory)
            _emit(f"monitor_drift_{label}_median", float(drift["median"]), "s")  # type: ignore[arg-type]
            _emit(f"monitor_drift_{label}_peak_rss", float(drift["peak_kb"]) / 1024, "MB")  # type: ignore[arg-type]
            if rows == SIZES[-1]:
                for name, (statistic, score, drifted) in drift["verdicts"].items():  # type: ignore[attr-defined]
                    _emit(
                        f"monitor_drift_2021_vs_2023_{name}_{statistic}{'_DRIFT' if drifted else ''}",
                        score,
                        "score",
                    )
                read = _child("read", directory)
                _emit("monitor_read_window_1m_median", float(read["median"]), "s")  # type: ignore[arg-type]
                _emit("monitor_read_window_1m_peak_rss", float(read["peak_kb"]) / 1024, "MB")  # type: ignore[arg-type]
                _emit("monitor_read_window_1m_objects", float(read["objects"]), "count")  # type: ignore[arg-type]
                _emit("monitor_read_window_1m_gzip_size", float(read["megabytes"]), "MB")  # type: ignore[arg-type]
    _emit("monitor_init_time_median", init_time(), "s")


if __name__ == "__main__":
    main()
