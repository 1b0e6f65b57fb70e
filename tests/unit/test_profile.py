"""Reference profile (schema 2): format, round trip, slicing, bins, and the trip_distance outliers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.monitor_months import monitored_columns, month_columns, take
from trip_core.calibration import MIN_DAY_ROWS, add_day_excesses
from trip_core.contracts import MAX_TRIP_DISTANCE_MILES
from trip_core.features import MONITORED_FEATURES, TIME_OF_WEEK_FEATURES
from trip_core.profile import (
    NUMERIC_BINS,
    PROFILE_SCHEMA,
    SLICINGS,
    CategoricalReference,
    NumericReference,
    build_reference_profile,
    read_profile,
    time_of_week_slice,
)


@pytest.fixture(scope="module")
def ref_2021() -> tuple[dict[str, np.ndarray], np.ndarray]:
    raw = month_columns("2021-01")
    return monitored_columns(raw), raw["prediction"]


def test_profile_is_json_and_reads_back(ref_2021: tuple[dict[str, np.ndarray], np.ndarray]) -> None:
    columns, predictions = ref_2021
    data = build_reference_profile(columns, predictions, "hour_of_week")
    profile = read_profile(json.dumps(data))
    assert (profile.slicing, profile.n_slices) == ("hour_of_week", 168)
    assert set(profile.columns) == {*MONITORED_FEATURES, "prediction"}
    for name, column in profile.columns.items():
        assert column.slice_counts.shape[0] == 168
        assert column.count + column.missing + column.invalid == len(predictions)
        if isinstance(column, NumericReference):
            assert column.slice_counts.shape[1] == column.edges.size + 1 <= NUMERIC_BINS
            assert np.all(np.diff(column.edges) > 0)
        else:
            assert isinstance(column, CategoricalReference)
            assert column.codes.size == column.slice_counts.shape[1] and name in MONITORED_FEATURES


def test_slice_counts_follow_the_pickup_time(ref_2021: tuple[dict[str, np.ndarray], np.ndarray]) -> None:
    columns, predictions = ref_2021
    profile = read_profile(build_reference_profile(columns, predictions, "hour_of_week"))
    weekday, hour = (columns[name] for name in TIME_OF_WEEK_FEATURES)
    per_slice = np.bincount((weekday * 24 + hour).astype(np.int64), minlength=168)
    assert np.array_equal(profile.columns["prediction"].slice_counts.sum(axis=1), per_slice)
    saturday_23h = time_of_week_slice("day_type_x_3h", np.array([5]), np.array([23]))
    sunday_0h = time_of_week_slice("day_type_x_3h", np.array([6]), np.array([0]))
    assert (int(saturday_23h[0]), int(sunday_0h[0])) == (15, 16)
    for name, (n_slices, _) in SLICINGS.items():
        every = time_of_week_slice(name, np.repeat(np.arange(7), 24), np.tile(np.arange(24), 7))
        assert set(every.tolist()) == set(range(n_slices))


def test_bins_resolve_a_fifth_longer_distance(ref_2021: tuple[dict[str, np.ndarray], np.ndarray]) -> None:
    """The binned CDF moves by several bins' worth when distances are 20 % longer."""
    columns, predictions = ref_2021
    distance = read_profile(build_reference_profile(columns, predictions)).columns["trip_distance"]
    assert isinstance(distance, NumericReference)
    assert distance.edges.max() <= MAX_TRIP_DISTANCE_MILES
    valid = columns["trip_distance"][columns["trip_distance"] <= MAX_TRIP_DISTANCE_MILES]
    shares = distance.slice_counts.sum(axis=0) / distance.count
    longer = np.bincount(distance.bins(valid * 1.2), minlength=shares.size) / valid.size
    assert np.abs(np.cumsum(shares - longer)).max() > 5 * np.median(shares)


def test_out_of_range_distances_are_counted_not_profiled() -> None:
    raw = month_columns("2021-01")
    columns = monitored_columns(raw)
    profile = read_profile(build_reference_profile(columns, raw["prediction"]))
    distance = profile.columns["trip_distance"]
    outside = int(np.sum((raw["trip_distance"] < 0) | (raw["trip_distance"] > MAX_TRIP_DISTANCE_MILES)))
    assert outside > 0 and distance.invalid == outside


def test_bad_profiles_are_refused(ref_2021: tuple[dict[str, np.ndarray], np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"schema 1.*reads schema 2"):
        read_profile('{"schema": 1}')
    columns, predictions = ref_2021
    data = build_reference_profile(take(columns, np.arange(100)), predictions[:100])
    data["n_slices"] = 5
    with pytest.raises(ValueError, match="slicing"):
        read_profile(data)
    with pytest.raises(ValueError, match="malformed"):
        read_profile({"schema": PROFILE_SCHEMA, "n_rows": 1, "slicing": "none", "n_slices": 1,
                      "columns": {"x": {"kind": "numeric"}}})  # fmt: skip
    with pytest.raises(ValueError, match="rows"):
        build_reference_profile({name: np.zeros(3) for name in columns}, np.zeros(4))
    with pytest.raises(ValueError, match="lack"):
        build_reference_profile({}, np.zeros(4))
    with pytest.raises(ValueError, match="slicing"):
        build_reference_profile(columns, predictions, "by_moon")


def test_day_excesses_are_one_per_full_day_and_optional() -> None:
    raw = month_columns("2021-01")
    first_days = take(raw, np.flatnonzero(raw["pickup_datetime"] < np.datetime64("2021-01-08")))
    columns, predictions = monitored_columns(first_days), first_days["prediction"]
    days = first_days["pickup_datetime"].astype("datetime64[D]")
    plain = build_reference_profile(columns, predictions)
    dated = json.loads(json.dumps(add_day_excesses(plain, columns, predictions, days)))
    full_days = int(np.count_nonzero(np.unique(days, return_counts=True)[1] >= MIN_DAY_ROWS))
    assert full_days >= 3
    for name, column in read_profile(dated).columns.items():
        assert column.day_excess.shape == (full_days,), name
        assert read_profile(plain).columns[name].day_excess.size == 0
    dated["columns"]["trip_distance"]["day_excess"] = [float("nan")]
    with pytest.raises(ValueError, match="day_excess"):
        read_profile(dated)
