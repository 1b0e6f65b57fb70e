"""Which time-of-week slicing makes contiguous no-drift windows look like no drift?

Slides 24 h and 6 h windows of pickup time hourly over 2023-03 and runs the monitor's drift code
on each against a 2023-03 and a 2023-02 reference profile built with every candidate slicing
(trip_core.profile.SLICINGS). Prints, per (reference, slicing, window length): the share of windows
where each drift feature and the prediction drift, the dataset-drift share, and how sparse the
reference slices are. No drift is injected, so every flag is a false positive (the 2023-02
reference also carries the real month-to-month change).

    python -m benchmarks.bench_drift_calibration [--step-hours 1] [--slicings none hour_of_week ...]
"""

from __future__ import annotations

import argparse

import numpy as np

from lambda_monitor.drift import dataset_drift
from lambda_monitor.window import current_columns
from tests.monitor_months import month_columns, reference_profile_dict, take, valid_rows, version_rows
from trip_core.profile import SLICINGS, ReferenceProfile, read_profile

REPLAYED = "2023-03"
REFERENCES = ("2023-03", "2023-02")
WINDOW_HOURS = (24, 6)
MIN_ROWS = 200  # the monitor's default MinPredictions: smaller windows get no verdict


def month_in_time_order(month: str) -> dict[str, np.ndarray]:
    rows = valid_rows(month_columns(month))
    rows = take(rows, np.argsort(rows["pickup_datetime"], kind="stable"))
    first = np.datetime64(f"{month}-01T00:00:00", "s")
    inside = (rows["pickup_datetime"] >= first) & (rows["pickup_datetime"] < first + np.timedelta64(31, "D"))
    return take(rows, np.flatnonzero(inside & (rows["pickup_datetime"].astype("datetime64[M]") == first)))


def window_bounds(pickup: np.ndarray, hours: int, step_hours: int) -> list[tuple[int, int]]:
    """Row ranges of every [start, start + hours) window inside the month, start on whole hours."""
    start = pickup[0].astype("datetime64[h]")
    last = pickup[-1].astype("datetime64[h]") + np.timedelta64(1, "h")
    bounds = []
    length, step = np.timedelta64(hours, "h"), np.timedelta64(step_hours, "h")
    while start + length <= last:
        low, high = np.searchsorted(pickup, [start, start + length])
        if high - low >= MIN_ROWS:
            bounds.append((int(low), int(high)))
        start += step
    return bounds


def sparsity(profile: ReferenceProfile) -> tuple[int, int]:
    """(smallest, median) reference rows per slice."""
    rows = profile.columns["trip_distance"].slice_counts.sum(axis=1)
    return int(rows.min()), int(np.median(rows))


def false_positive_rates(
    profile: ReferenceProfile, rows: dict[str, np.ndarray], bounds: list[tuple[int, int]]
) -> dict[str, float]:
    flags: dict[str, list[bool]] = {}
    for low, high in bounds:
        result = dataset_drift(profile, current_columns(version_rows(take(rows, np.arange(low, high)))))
        columns = {**result.features, "prediction": result.prediction}
        for name, column in columns.items():
            flags.setdefault(name, []).append(column is not None and column.drifted)
        flags.setdefault("DATASET", []).append(result.dataset_drift)
    return {name: float(np.mean(values)) for name, values in flags.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--step-hours", type=int, default=1)
    parser.add_argument("--slicings", nargs="+", default=list(SLICINGS), choices=list(SLICINGS))
    args = parser.parse_args()
    replay = month_in_time_order(REPLAYED)
    bounds = {
        hours: window_bounds(replay["pickup_datetime"], hours, args.step_hours) for hours in WINDOW_HOURS
    }
    header = None
    for month in REFERENCES:
        reference = valid_rows(month_columns(month))
        for slicing in args.slicings:
            profile = read_profile(reference_profile_dict(reference, slicing))
            smallest, median = sparsity(profile)
            for hours in WINDOW_HOURS:
                rates = false_positive_rates(profile, replay, bounds[hours])
                if header is None:
                    header = list(rates)
                    names = " ".join(f"{name[:12]:>12}" for name in header)
                    print(f"{'reference':9} {'slicing':16} {'slices':>6} {'min/med rows':>13} {'window':>6} "
                          f"{'windows':>7} {names}", flush=True)  # fmt: skip
                print(f"{month:9} {slicing:16} {profile.n_slices:6d} {f'{smallest}/{median}':>13} "
                      f"{f'{hours}h':>6} {len(bounds[hours]):7d} "
                      + " ".join(f"{rates[name]:12.1%}" for name in header), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
