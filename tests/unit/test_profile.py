"""Reference profile: format, round trip, sketch fidelity, and the trip_distance outlier treatment."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import ks_2samp, wasserstein_distance

from tests.monitor_months import monitored_columns, month_columns, take
from trip_core.contracts import MAX_TRIP_DISTANCE_MILES
from trip_core.features import MONITORED_FEATURES
from trip_core.profile import (
    CategoricalReference,
    NumericReference,
    build_reference_profile,
    read_profile,
)


@pytest.fixture(scope="module")
def ref_2021() -> tuple[dict[str, np.ndarray], np.ndarray]:
    raw = month_columns("2021-01")
    return monitored_columns(raw), raw["prediction"]


def test_profile_is_json_and_reads_back(ref_2021: tuple[dict[str, np.ndarray], np.ndarray]) -> None:
    columns, predictions = ref_2021
    data = build_reference_profile(columns, predictions)
    profile = read_profile(json.dumps(data))
    assert profile.n_rows == len(predictions)
    assert set(profile.columns) == {*MONITORED_FEATURES, "prediction"}
    for name, kind in MONITORED_FEATURES.items():
        column = profile.columns[name]
        assert column.kind == kind
        assert column.count + column.missing + column.invalid == len(predictions)
        if isinstance(column, NumericReference):
            assert len(column.quantiles) == 1000
            assert np.all(np.diff(column.quantiles) >= 0)
            assert column.hist_counts.sum() == column.count
        else:
            assert isinstance(column, CategoricalReference)
            assert column.counts.sum() == column.count
    hour = profile.columns["pickup_hour"]
    assert isinstance(hour, NumericReference) and hour.discrete
    assert set(np.unique(hour.quantiles)) <= set(range(24))


def test_distance_outliers_are_invalid_not_compared(
    ref_2021: tuple[dict[str, np.ndarray], np.ndarray],
) -> None:
    columns, predictions = ref_2021
    raw = columns["trip_distance"]
    distance = read_profile(build_reference_profile(columns, predictions)).columns["trip_distance"]
    assert isinstance(distance, NumericReference)
    assert raw.max() > 200_000  # the measured trap: raw std is ~1,900 miles
    assert distance.invalid == int((raw > MAX_TRIP_DISTANCE_MILES).sum()) > 0
    assert distance.quantiles.max() <= MAX_TRIP_DISTANCE_MILES
    assert distance.std < 10


def test_sketch_gives_the_exact_statistics_closely() -> None:
    raw = month_columns("2023-03")
    rng = np.random.default_rng(7)
    order = rng.permutation(len(raw["prediction"]))
    half = len(order) // 2
    ref, cur = take(raw, order[:half]), take(raw, order[half:])
    shifted = cur["trip_distance"] * 1.1
    profile = read_profile(build_reference_profile(monitored_columns(ref), ref["prediction"]))
    for name in ("trip_distance", "pickup_hour", "prediction"):
        column = profile.columns[name]
        assert isinstance(column, NumericReference)
        full = monitored_columns(ref)[name] if name != "prediction" else ref["prediction"]
        full = full[(full >= 0) & (full <= MAX_TRIP_DISTANCE_MILES)] if name == "trip_distance" else full
        current = shifted if name == "trip_distance" else cur[name] if name == "prediction" else None
        if current is None:
            current = monitored_columns(cur)[name]
        current = current[current <= MAX_TRIP_DISTANCE_MILES]
        exact_w = wasserstein_distance(full, current) / np.std(full)
        sketch_w = wasserstein_distance(column.quantiles, current) / column.scale
        assert abs(exact_w - sketch_w) < 0.005, name
        exact_d = ks_2samp(full, current).statistic
        sketch_d = ks_2samp(column.quantiles, current).statistic
        assert abs(exact_d - sketch_d) < 0.003, name


def test_real_distance_shift_is_seen() -> None:
    """Trips 20 % longer drift; the same trips unshifted do not; raw-std scaling would have missed it."""
    raw = month_columns("2021-01")
    rng = np.random.default_rng(3)
    order = rng.permutation(len(raw["prediction"]))
    half = len(order) // 2
    ref, cur = take(raw, order[:half]), take(raw, order[half:])
    profile = read_profile(build_reference_profile(monitored_columns(ref), ref["prediction"]))
    distance = profile.columns["trip_distance"]
    assert isinstance(distance, NumericReference)
    live = cur["trip_distance"][cur["trip_distance"] <= MAX_TRIP_DISTANCE_MILES]  # validator rejects the rest

    same = wasserstein_distance(distance.quantiles, live) / distance.scale
    longer = wasserstein_distance(distance.quantiles, live * 1.2) / distance.scale
    assert same < 0.05
    assert longer > 0.1
    raw_std = float(np.std(ref["trip_distance"]))
    assert wasserstein_distance(ref["trip_distance"], live * 1.2) / raw_std < 0.1  # the trap: missed


def test_bad_profiles_are_refused() -> None:
    with pytest.raises(ValueError, match="schema"):
        read_profile('{"schema": 99}')
    with pytest.raises(ValueError, match="malformed"):
        read_profile('{"schema": 1, "n_rows": 1, "sketch_size": 1, "columns": {"x": {"kind": "numeric"}}}')
    columns = {name: np.zeros(3) for name in MONITORED_FEATURES}
    with pytest.raises(ValueError, match="rows"):
        build_reference_profile(columns, np.zeros(4))
    with pytest.raises(ValueError, match="lack"):
        build_reference_profile({}, np.zeros(4))
