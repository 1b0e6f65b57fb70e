"""The smoke test of a serving bundle: before training publishes a version (training.gate) and before the
prediction function follows a pointer to it (lambda_predict.model_provider), the bundle predicts
SMOKE_RIDES, and every answer must be a finite duration in the target's domain
[MIN_DURATION_MINUTES, MAX_DURATION_MINUTES]. It judges whether a bundle is fit to serve, not how good
it is (the gate does that): it refuses a bundle that raises, answers in the wrong shape, or answers NaN,
infinity or durations no ride has (a sign error, a wrong baseline, a column mixed up).

SMOKE_RIDES are real green-taxi rides of 2023-01 to 2023-03 (TLC trip records), frozen here: every pickup
hour and weekday, every borough and service zone of the zone table on both ends, same and different
zones and boroughs, distances from 0 to over 20 miles. They were picked among rides that models of
2021-2023 (default and smaller fits) all predict well inside the domain, so a sound model passes with
room to spare and the test does not depend on one model's answers.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from trip_core.bundle import BundleError, ServingBundle, load_bundle
from trip_core.contracts import MAX_DURATION_MINUTES, MIN_DURATION_MINUTES
from trip_core.features import compute_features
from trip_core.validity import Predicts

# (PULocationID, DOLocationID, trip_distance, pickup_datetime in New York local time)
SMOKE_RIDES: tuple[tuple[int, int, float, str], ...] = (
    (116, 112, 12.58, "2023-01-02T12:19:00"),
    (112, 236, 4.4, "2023-01-04T09:19:19"),
    (135, 95, 2.32, "2023-01-07T22:24:26"),
    (196, 209, 11.3, "2023-01-08T11:25:57"),
    (260, 70, 3.36, "2023-01-13T16:48:53"),
    (206, 187, 5.52, "2023-01-13T18:54:31"),
    (97, 181, 2.02, "2023-01-14T11:53:28"),
    (261, 132, 21.39, "2023-01-19T02:54:00"),
    (75, 127, 7.58, "2023-01-20T18:19:30"),
    (179, 42, 5.26, "2023-01-21T14:00:48"),
    (134, 130, 1.67, "2023-01-25T15:55:39"),
    (223, 75, 6.84, "2023-01-26T07:08:42"),
    (244, 243, 2.52, "2023-01-27T21:30:09"),
    (146, 146, 0.51, "2023-01-30T09:40:16"),
    (66, 261, 3.7, "2023-02-01T22:23:07"),
    (40, 195, 0.54, "2023-02-03T09:22:14"),
    (74, 166, 2.05, "2023-02-06T19:50:03"),
    (236, 262, 1.41, "2023-02-12T20:14:33"),
    (265, 92, 13.27, "2023-02-16T08:06:42"),
    (83, 258, 5.89, "2023-02-17T12:09:04"),
    (130, 164, 12.31, "2023-02-17T19:54:51"),
    (95, 102, 1.47, "2023-02-18T05:28:57"),
    (228, 170, 11.26, "2023-02-18T19:54:00"),
    (41, 244, 2.74, "2023-02-22T08:15:42"),
    (193, 145, 1.89, "2023-02-23T17:35:00"),
    (82, 173, 1.68, "2023-02-26T01:12:10"),
    (226, 7, 1.26, "2023-02-26T20:30:07"),
    (1, 256, 1.42, "2023-02-28T00:58:13"),
    (215, 86, 7.7, "2023-03-01T06:54:11"),
    (92, 53, 4.05, "2023-03-01T19:16:07"),
    (7, 233, 4.08, "2023-03-04T15:11:40"),
    (61, 25, 1.77, "2023-03-04T19:17:08"),
    (25, 106, 0.7, "2023-03-10T18:55:55"),
    (255, 142, 8.32, "2023-03-11T03:10:27"),
    (17, 35, 3.82, "2023-03-13T12:10:00"),
    (264, 264, 0.0, "2023-03-14T13:43:45"),
    (65, 1, 14.9, "2023-03-19T10:40:22"),
    (32, 254, 1.52, "2023-03-20T09:42:00"),
    (138, 223, 1.0, "2023-03-21T14:20:25"),
    (43, 107, 5.49, "2023-03-21T18:45:02"),
    (129, 82, 0.3, "2023-03-22T04:18:59"),
    (42, 168, 0.88, "2023-03-22T07:27:00"),
    (152, 163, 5.32, "2023-03-22T07:34:52"),
    (69, 265, 11.26, "2023-03-22T23:00:22"),
    (33, 88, 2.84, "2023-03-26T14:28:07"),
    (166, 116, 2.38, "2023-03-27T20:51:14"),
    (24, 48, 2.89, "2023-03-28T14:36:37"),
    (210, 210, 5.65, "2023-03-30T16:01:55"),
)


class BundleRefused(BundleError):
    """The bundle loaded but is not fit to serve: its answers to the smoke rides say why."""


@cache
def smoke_features() -> np.ndarray:
    """SMOKE_RIDES as the feature matrix serving computes (read-only: one copy per process)."""
    pu, do, distance, pickup = zip(*SMOKE_RIDES, strict=True)
    features = compute_features(
        np.array(pu, dtype=np.int64),
        np.array(do, dtype=np.int64),
        np.array(distance, dtype=np.float64),
        np.array(pickup, dtype="datetime64[s]"),
    )
    features.flags.writeable = False
    return features


def smoke_test(model: Predicts) -> None:
    """Raise BundleRefused, naming the reason, unless `model` answers every smoke ride with a finite
    duration in [MIN_DURATION_MINUTES, MAX_DURATION_MINUTES]."""
    features = smoke_features()
    try:
        minutes = np.asarray(model.predict(features.copy()), dtype=np.float64)
    except Exception as exc:  # whatever the bundle's arrays make numpy raise: the bundle is refused
        raise BundleRefused(
            f"smoke test: predicting the smoke rides raised {type(exc).__name__}: {exc}"
        ) from exc
    if minutes.shape != (len(features),):
        raise BundleRefused(f"smoke test: {len(features)} smoke rides answered with shape {minutes.shape}")
    bad = ~(np.isfinite(minutes) & (minutes >= MIN_DURATION_MINUTES) & (minutes <= MAX_DURATION_MINUTES))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise BundleRefused(
            f"smoke test: {int(bad.sum())} of {len(features)} smoke rides predicted outside"
            f" [{MIN_DURATION_MINUTES:g}, {MAX_DURATION_MINUTES:g}] min or not finite"
            f" (smoke ride {first} {SMOKE_RIDES[first]}: {float(minutes[first])!r} min)"
        )


def load_servable(data: bytes, sha256: str) -> ServingBundle:
    """A bundle as the predict function accepts one: its pointer's checksum, then the smoke test; raises
    BundleError (BundleRefused) naming the reason."""
    model = load_bundle(data, expected_sha256=sha256)
    smoke_test(model)
    return model
