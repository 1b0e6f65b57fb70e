"""Training (whole DataFrame columns) and serving (one ride dict at a time) give identical features."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from training.data import PICKUP, frame_features, load_month
from trip_core.features import FEATURE_NAMES, compute_features

DATA = Path(__file__).resolve().parents[2] / "data"


def _serving_row(ride: dict[str, object]) -> np.ndarray:
    """What the prediction Lambda does per ride: JSON-ish values -> one-row compute_features call."""
    pickup = datetime.fromisoformat(str(ride["pickup_datetime"]))
    return compute_features(
        np.array([ride["PULocationID"]]),
        np.array([ride["DOLocationID"]]),
        np.array([ride["trip_distance"]]),
        np.array([np.datetime64(pickup)]),
    )


def test_training_and_serving_paths_give_identical_features() -> None:
    frame = load_month(str(DATA / "green_tripdata_2023-03.parquet")).frame.sample(400, random_state=0)
    training = frame_features(frame)
    rides = [
        {
            "PULocationID": int(row.PULocationID),
            "DOLocationID": int(row.DOLocationID),
            "trip_distance": float(row.trip_distance),
            "pickup_datetime": getattr(row, PICKUP).isoformat(),
        }
        for row in frame.itertuples()
    ]
    serving = np.vstack([_serving_row(ride) for ride in rides])
    assert training.shape == (400, len(FEATURE_NAMES))
    np.testing.assert_array_equal(training, serving)
