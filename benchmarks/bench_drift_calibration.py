"""Do contiguous no-drift windows look like no drift, and does real drift still show?

Slides 24 h windows of pickup time (every --step-hours) over 2023-03 and runs the monitor's drift
code on each against reference profiles built without and with day excesses (trip_core.calibration):
2023-03 itself, 2023-02 and 2023-01+02 (no drift injected: every flag is a false positive, the other
months also carry the real month-to-month change), 2021-01 (real drift: every window should raise
dataset drift) and 2023-03 with distances x1.2 (every window should flag trip_distance). Prints
the share of windows where each column drifts and the dataset-drift share.

    python -m benchmarks.bench_drift_calibration [--step-hours 2] [--window-hours 24 6] [--slicings ...]
    python -m benchmarks.bench_drift_calibration --iid-windows 200   (iid samples at several n instead)
"""

from __future__ import annotations

import argparse

import numpy as np

from lambda_monitor.drift import dataset_drift
from lambda_monitor.window import current_columns
from tests.monitor_months import month_columns, reference_profile_dict, take, valid_rows, version_rows
from trip_core.profile import DEFAULT_SLICING, SLICINGS, ReferenceProfile, read_profile

REPLAYED = "2023-03"
DISTANCE_FACTOR = 1.2
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


def months(names: str) -> dict[str, np.ndarray]:
    """Valid rides of one or more months ("2023-01+2023-02")."""
    parts = [valid_rows(month_columns(month)) for month in names.split("+")]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def with_longer_distances(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**rows, "trip_distance": rows["trip_distance"] * DISTANCE_FACTOR}


# (reference months, what the windows are, whether every window should drift)
SCENARIOS = (
    ("2023-03", "2023-03", "no drift"),
    ("2023-02", "2023-03", "no drift"),
    ("2023-01+2023-02", "2023-03", "no drift"),
    ("2021-01", "2023-03", "drift"),
    ("2023-03", f"2023-03 distance x{DISTANCE_FACTOR}", "drift"),
)


HEADER = ("PULocationID", "DOLocationID", "trip_distance", "prediction", "DATASET")


def print_rates(label: str, windows: int, rates: dict[str, float]) -> None:
    print(f"{label:60} {windows:7d} " + " ".join(f"{rates[name]:12.1%}" for name in HEADER), flush=True)


def run_scenario(
    reference_months: str, replayed: dict[str, np.ndarray], label: str, args: argparse.Namespace
) -> None:
    reference = months(reference_months)
    for slicing in args.slicings:
        for day_excess in (False, True):
            profile = read_profile(reference_profile_dict(reference, slicing, day_excess))
            for hours in args.window_hours:
                bounds = window_bounds(replayed["pickup_datetime"], hours, args.step_hours)
                rates = false_positive_rates(profile, replayed, bounds)
                null = "e_d" if day_excess else "iid"
                print_rates(f"{reference_months} vs {label} {slicing} {null} {hours}h", len(bounds), rates)


IID_SIZES = (200, 500, 1_000, 2_000, 5_000, 20_000)


def iid_false_positive_rates(windows_per_size: int) -> None:
    """Per n: share of iid samples of the replayed month flagged against its own profile, with day excesses.

    Below ALPHA by design where sampling noise no longer dominates: the null also holds the variation
    between days that iid samples do not have.
    """
    month = months(REPLAYED)
    profile = read_profile(reference_profile_dict(month, DEFAULT_SLICING, day_excess=True))
    rng = np.random.default_rng(5)
    for n in IID_SIZES:
        flags: dict[str, list[bool]] = {}
        for _ in range(windows_per_size):
            window = take(month, rng.integers(0, len(month["prediction"]), n))
            result = dataset_drift(profile, current_columns(version_rows(window)))
            for name, column in {**result.features, "prediction": result.prediction}.items():
                flags.setdefault(name, []).append(column is not None and column.drifted)
            flags.setdefault("DATASET", []).append(result.dataset_drift)
        rates = {name: float(np.mean(values)) for name, values in flags.items()}
        print_rates(f"iid n={n} vs {REPLAYED} e_d", windows_per_size, rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--step-hours", type=int, default=2)
    parser.add_argument("--window-hours", type=int, nargs="+", default=[24])
    parser.add_argument("--slicings", nargs="+", default=[DEFAULT_SLICING], choices=list(SLICINGS))
    parser.add_argument("--iid-windows", type=int, default=0, help="iid samples per n (0: none)")
    args = parser.parse_args()
    if args.iid_windows:
        iid_false_positive_rates(args.iid_windows)
        return
    replay = month_in_time_order(REPLAYED)
    windows = {REPLAYED: replay, f"{REPLAYED} distance x{DISTANCE_FACTOR}": with_longer_distances(replay)}
    print(f"{'reference vs windows (expected) slicing null window':60} {'windows':>7} "
          + " ".join(f"{name[:12]:>12}" for name in HEADER))  # fmt: skip
    for reference_months, replayed, expected in SCENARIOS:
        run_scenario(reference_months, windows[replayed], f"{replayed} ({expected})", args)


if __name__ == "__main__":
    main()
