"""The two label attacks of issue 13, at the data level: through the predict and actuals functions' logic
into the capture bucket, then the labelled rides the loop trains, gates and rolls back on
(lambda_retrain.labelled.load_labelled, the monitor's reader).

(a) a later actuals batch rewriting other riders' durations: the attacker knows their ride ids, not the
    prediction ids they were given, so every line is refused; the labelled rows keep the true durations.
(b) a rides producer re-sending other riders' ride_ids with shuffled distances, then labelling the
    predictions it was given: those ride_ids are captured with two inputs, so they are labelled by none,
    counted; none of the forged rows reaches the labelled set.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from lambda_actuals.handler import handle
from lambda_retrain.labelled import LabelledRides, load_labelled
from tests.doubles.actuals import actual_record
from tests.unit.test_actuals_service import Stack, new_stack
from trip_core.contracts import prediction_id
from trip_core.features import FEATURE_NAMES

RIDES = 200
START = datetime(2023, 3, 6, 13, tzinfo=UTC)
END = datetime(2023, 3, 6, 20, tzinfo=UTC)
rng = np.random.default_rng(13)
DISTANCES = np.round(rng.uniform(0.5, 12.0, RIDES), 2)
TRUTH = np.round(3.0 + 2.5 * DISTANCES + rng.normal(0, 1.5, RIDES), 2).clip(1.5, 59.0)


@pytest.fixture
def stack() -> Stack:
    return new_stack()


def ride(ride_id: int, distance: float) -> dict[str, Any]:
    pickup = datetime(2023, 3, 6, 9, 0) + timedelta(seconds=17 * ride_id)  # New York, 14:00 UTC on
    return {
        "ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": float(distance),
                 "pickup_datetime": pickup.isoformat()},
        "ride_id": ride_id,
    }  # fmt: skip


def honest_day(stack: Stack) -> dict[Any, str]:
    """Every rider's ride served, and its true duration reported with the id the rider was given."""
    ids = stack.serve(*(ride(i, DISTANCES[i]) for i in range(RIDES)))
    lines = [{"prediction_id": ids[i], "duration_minutes": float(TRUTH[i])} for i in range(RIDES)]
    handle({"Records": [actual_record(1000 + i, line) for i, line in enumerate(lines)]}, stack.actuals)
    return ids


def truth_of(labelled: LabelledRides) -> dict[float, float]:
    """distance -> labelled minutes (the honest distances are distinct)."""
    distance = labelled.features[:, FEATURE_NAMES.index("trip_distance")]
    return dict(zip(distance.tolist(), labelled.target.tolist(), strict=True))


def test_a_later_actuals_batch_cannot_rewrite_other_riders_durations(stack: Stack) -> None:
    ids = honest_day(stack)
    hour = datetime(2023, 3, 6, 14, tzinfo=UTC)  # the pickup hour the ids name: public, not the token
    forged: list[dict[str, object]] = [{"ride_id": i, "duration_minutes": 59.0} for i in range(RIDES)]
    forged += [{"prediction_id": prediction_id(hour, secrets.token_hex(16)), "duration_minutes": 59.0}
               for _ in range(RIDES)]  # fmt: skip
    response = handle(
        {"Records": [actual_record(5000 + i, line) for i, line in enumerate(forged)]}, stack.actuals
    )
    assert response == {"batchItemFailures": []}
    reasons = [r[2] for r in stack.rejected_reasons(5000)]
    assert reasons == ["malformed"] * RIDES + ["unknown_prediction"] * RIDES
    labelled = load_labelled(stack.capture, START, END)
    assert len(labelled) == RIDES and labelled.summary["conflicting_rides"] == 0
    assert truth_of(labelled) == dict(zip(DISTANCES.tolist(), TRUTH.tolist(), strict=True))
    assert len(set(ids.values())) == RIDES


def test_a_rides_producer_resending_other_riders_ride_ids_labels_none_of_them(stack: Stack) -> None:
    honest_day(stack)
    victims = np.arange(100)
    shuffled = rng.permutation(DISTANCES[victims]) + 0.001  # other inputs for the same ride ids
    stack.stream.records.clear()
    forged_ids = stack.serve(
        *(ride(int(i), d) for i, d in zip(victims, shuffled, strict=True)), first_seq=3000
    )
    # the attacker labels the predictions it was given, with the durations that suit it
    lines = [{"prediction_id": forged_ids[int(i)], "duration_minutes": 59.0} for i in victims]
    handle({"Records": [actual_record(6000 + i, line) for i, line in enumerate(lines)]}, stack.actuals)
    assert stack.accepted(6000) != []  # its own predictions are known: the ingestion cannot tell

    labelled = load_labelled(stack.capture, START, END)
    assert labelled.summary["conflicting_rides"] == len(victims)
    kept = np.setdiff1d(np.arange(RIDES), victims)
    assert truth_of(labelled) == dict(zip(DISTANCES[kept].tolist(), TRUTH[kept].tolist(), strict=True))
    assert not set(np.round(shuffled, 3).tolist()) & set(truth_of(labelled))  # no forged row
    assert 59.0 not in labelled.target
