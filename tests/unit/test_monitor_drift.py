"""Drift statistics on real months: no drift between halves of one month, drift 2021 -> 2023."""

from __future__ import annotations

import numpy as np
import pytest

from lambda_monitor.drift import SMALL_SAMPLE_MAX, column_drift, dataset_drift
from lambda_monitor.window import VersionRows, current_columns
from tests.monitor_months import month_columns, reference_profile_dict, take, valid_rows
from trip_core.profile import NumericReference, read_profile

SEEDS = range(8)


def _rows(columns: dict[str, np.ndarray]) -> VersionRows:
    return VersionRows(
        model_version="1",
        ride_id=columns["ride_id"],
        pu_location_id=columns["PULocationID"].astype(np.float64),
        do_location_id=columns["DOLocationID"].astype(np.float64),
        trip_distance=columns["trip_distance"],
        pickup_datetime=columns["pickup_datetime"],
        prediction=columns["prediction"],
    )


def _halves(month: str, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rows = valid_rows(month_columns(month))
    order = np.random.default_rng(seed).permutation(len(rows["prediction"]))
    half = len(order) // 2
    return take(rows, order[:half]), take(rows, order[half:])


def test_same_month_halves_raise_no_drift() -> None:
    """False-positive rates over seeds: whole halves (distances) and 500-row windows (tests)."""
    large_fp = small_fp = large_n = small_n = dataset_fp = 0
    for seed in SEEDS:
        ref, cur = _halves("2023-03", seed)
        profile = read_profile(reference_profile_dict(ref))
        large = dataset_drift(profile, current_columns(_rows(cur)).valid)
        columns = [*large.features.values(), large.prediction]
        assert all(c is not None and c.statistic in ("wasserstein_normed", "jensenshannon") for c in columns)
        large_fp += sum(c is not None and c.drifted for c in columns)
        large_n += len(columns)
        dataset_fp += large.dataset_drift
        rng = np.random.default_rng(100 + seed)
        for _ in range(5):
            sample = take(cur, rng.choice(len(cur["prediction"]), 500, replace=False))
            small = dataset_drift(profile, current_columns(_rows(sample)).valid)
            columns = [*small.features.values(), small.prediction]
            assert all(c is not None and c.statistic in ("ks", "chisquare") for c in columns)
            small_fp += sum(c is not None and c.drifted for c in columns)
            small_n += len(columns)
            dataset_fp += small.dataset_drift
    print(f"\nfalse positives: large windows {large_fp}/{large_n}, 500-row windows {small_fp}/{small_n}")
    assert large_fp == 0
    assert dataset_fp == 0
    assert small_fp / small_n <= 0.10  # p < 0.05 per test: about 5 % expected


def test_2021_reference_vs_2023_rides_drifts_on_what_moved() -> None:
    profile = read_profile(reference_profile_dict(valid_rows(month_columns("2021-01"))))
    current = valid_rows(month_columns("2023-03"))
    result = dataset_drift(profile, current_columns(_rows(current)).valid)
    verdicts = {name: c.drifted for name, c in result.features.items()}
    print(
        "\n" + "\n".join(f"{n}: {c.statistic} {c.score:.4f} {c.drifted}" for n, c in result.features.items())
    )
    assert verdicts["trip_distance"] and verdicts["PULocationID"] and verdicts["DOLocationID"]
    assert not verdicts["pickup_weekday"]  # a month is a month: weekdays do not move
    assert result.dataset_drift
    assert result.prediction is not None and result.prediction.drifted


def test_small_window_of_moved_data_is_caught_by_the_tests() -> None:
    profile = read_profile(reference_profile_dict(valid_rows(month_columns("2021-01"))))
    current = valid_rows(month_columns("2023-03"))
    sample = take(current, np.random.default_rng(1).choice(len(current["prediction"]), 800, replace=False))
    result = dataset_drift(profile, current_columns(_rows(sample)).valid)
    assert result.features["PULocationID"].statistic == "chisquare"
    assert result.features["PULocationID"].drifted
    assert result.dataset_drift


@pytest.mark.parametrize("n", [300, 5000])
def test_real_distance_shift_is_seen_at_any_window_size(n: int) -> None:
    ref, cur = _halves("2023-03", 0)
    distance = read_profile(reference_profile_dict(ref)).columns["trip_distance"]
    assert isinstance(distance, NumericReference)
    sample = np.random.default_rng(2).choice(cur["trip_distance"], n, replace=False)
    same = column_drift(distance, sample)
    longer = column_drift(distance, sample * 1.25)
    assert same is not None and longer is not None
    assert (same.statistic == "ks") == (n <= SMALL_SAMPLE_MAX)
    assert not same.drifted
    assert longer.drifted
