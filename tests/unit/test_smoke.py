"""trip_core.smoke: the smoke rides cover the feature domain and are rides serving accepts; sound models
pass; a bundle that raises, answers in the wrong shape, NaN, infinity or implausible durations is refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tests.doubles.predict import tiny_bundle
from training.data import frame_features, load_month
from training.export import export_bundle
from training.model import ModelParams, fit
from trip_core.bundle import load_bundle
from trip_core.contracts import MAX_DURATION_MINUTES, MIN_DURATION_MINUTES, RideRequest
from trip_core.features import compute_features, feature_column
from trip_core.rides import ValidRide, validate_ride
from trip_core.smoke import SMOKE_RIDES, BundleRefused, smoke_features, smoke_test
from trip_core.zones import zone_table

DATA = Path(__file__).resolve().parents[2] / "data"


def test_the_smoke_rides_cover_the_feature_domain() -> None:
    features = smoke_features()
    zones = zone_table()
    known = np.array(sorted(zones.location_ids))
    assert set(feature_column(features, "pickup_hour")) == set(range(24))
    assert set(feature_column(features, "pickup_weekday")) == set(range(7))
    for end in ("pu", "do"):
        assert set(feature_column(features, f"{end}_borough")) == set(zones.borough_code[known])
        assert set(feature_column(features, f"{end}_service_zone")) == set(zones.service_zone_code[known])
    assert (
        set(feature_column(features, "same_zone")) == set(feature_column(features, "same_borough")) == {0, 1}
    )
    distance = feature_column(features, "trip_distance")
    assert distance.min() == 0 and distance.max() > 20
    assert not features.flags.writeable


def test_every_smoke_ride_is_one_serving_accepts_and_features_as_serving_computes_them() -> None:
    for i, (pu, do, distance, pickup) in enumerate(SMOKE_RIDES):
        moment = datetime.fromisoformat(pickup)
        ride = validate_ride(RideRequest(i, pu, do, distance, moment).to_payload(), moment)
        assert isinstance(ride, ValidRide), ride
        served = compute_features(
            np.array([ride.pu_location_id]),
            np.array([ride.do_location_id]),
            np.array([ride.trip_distance]),
            np.array([ride.pickup_datetime], dtype="datetime64[s]"),
        )
        np.testing.assert_array_equal(served[0], smoke_features()[i])


@pytest.mark.parametrize(
    ("month", "rows", "params"),
    [("2023-02", 8000, ModelParams(max_iter=40)), ("2021-01", 10_000, ModelParams())],
)
def test_sound_models_pass(month: str, rows: int, params: ModelParams) -> None:
    frame = load_month(str(DATA / f"green_tripdata_{month}.parquet")).frame.sample(rows, random_state=0)
    bundle = load_bundle(export_bundle(fit(frame_features(frame), frame["duration"].to_numpy(), params), {}))
    smoke_test(bundle)
    minutes = bundle.predict(smoke_features())
    assert minutes.min() > MIN_DURATION_MINUTES and minutes.max() < MAX_DURATION_MINUTES


def test_a_stump_in_the_domain_passes() -> None:
    smoke_test(load_bundle(tiny_bundle()))  # 5 or 8 minutes


def test_the_domain_bounds_are_the_contracts_target_bounds() -> None:
    smoke_test(load_bundle(tiny_bundle(base=MIN_DURATION_MINUTES, minutes_per_mile=MAX_DURATION_MINUTES - 1)))
    with pytest.raises(BundleRefused, match="32 of 48 smoke rides"):  # the rides over 2 miles at 60.5 min
        smoke_test(load_bundle(tiny_bundle(base=57.5)))
    with pytest.raises(BundleRefused, match="16 of 48 smoke rides"):  # the others at 0.5 min
        smoke_test(load_bundle(tiny_bundle(base=0.5, minutes_per_mile=3.0)))


@pytest.mark.parametrize(
    ("base", "shown"),
    [
        (-1_000_000.0, "-999997.0 min"),  # finite but wrong: a sign or baseline error
        (float("nan"), "nan min"),
        (float("inf"), "inf min"),
    ],
)
def test_implausible_or_non_finite_answers_are_refused(base: float, shown: str) -> None:
    with pytest.raises(BundleRefused, match="48 of 48 smoke rides predicted outside") as info:
        smoke_test(load_bundle(tiny_bundle(base=base)))
    assert shown in str(info.value)


class Raising:
    def predict(self, features: np.ndarray) -> np.ndarray:
        return features[:, 99]  # a column index out of range: IndexError at predict time


class Shaped:
    def __init__(self, answer: np.ndarray) -> None:
        self.answer = answer

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.answer


def test_a_bundle_that_raises_at_predict_time_is_refused() -> None:
    with pytest.raises(BundleRefused, match="raised IndexError: index 99 is out of bounds"):
        smoke_test(Raising())


@pytest.mark.parametrize("shape", [(47,), (48, 1), (), (49,)])
def test_answers_of_the_wrong_shape_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(BundleRefused, match="48 smoke rides answered with shape"):
        smoke_test(Shaped(np.full(shape, 10.0)))
