"""Review of issue 14 (branch i14-review): hostile inputs that still break a guarantee the issue asks for.
Each test fails on 3e3af58; the docstring says which guarantee and where it breaks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from lambda_monitor.service import run_event
from lambda_predict.delivery import RetryPolicy
from lambda_predict.handler import handle
from lambda_predict.service import PredictService
from tests.doubles.monitor import MemoryState
from tests.doubles.predict import InMemoryObjects, InMemoryStream, broken_bundle, keyed_ids
from tests.unit.test_monitor_service import CONFIG, NOW, _ports, reference  # noqa: F401 (fixture)
from tests.unit.test_predict_service import (
    World,
    event,
    failures,
    good,
    kinesis_record,
    make_world,
)
from trip_core.bundle import load_bundle
from trip_core.capture import decode_capture, decode_rejected
from trip_core.features import FEATURE_NAMES
from trip_core.smoke import smoke_test

DISTANCE = FEATURE_NAMES.index("trip_distance")


@pytest.fixture
def world() -> World:
    return make_world()


# ------------------------------------------------------------------------- 1. predict: forged events


def test_a_direct_invoker_cannot_overwrite_a_real_batchs_capture(world: World) -> None:
    """A direct invoke is told from a Kinesis batch only by the shape of the event
    (handler.is_kinesis_event), so whoever may invoke the function directly can send "Records" naming
    a real shard and sequence number: the capture key (shard + first sequence + pickup hour) and the
    prediction id (HMAC of shard/sequence) are then the real batch's, and the real capture object is
    replaced by forged inputs under the victim's prediction id (actuals of that id label the forgery)."""
    real = kinesis_record(7, good(256, 3.0))
    handle(event(real), None, world.service)
    (key,) = world.captures.objects
    before = decode_capture(world.captures.objects[key])

    forged = kinesis_record(
        7, {"ride": {"PULocationID": 1, "DOLocationID": 265, "trip_distance": 99.0}, "ride_id": 256}
    )
    handle(event(forged), None, world.service)  # the same handler a direct invoke reaches
    after = decode_capture(world.captures.objects[key])
    assert after.prediction_id == before.prediction_id  # the victim's id ...
    assert (after.pu_location_id, after.trip_distance) == (before.pu_location_id, before.trip_distance), (
        "a direct invoke overwrote the real batch's capture with forged inputs"
    )


def test_a_forged_arrival_time_lets_any_pickup_year_through(world: World) -> None:
    """The pickup bounds (issue 14 point 1) are measured from approximateArrivalTimestamp, which a direct
    invoker writes: a ride picked up in 2150 is accepted, predicted and captured in dt=2150-..."""
    forged = kinesis_record(
        1, {**good(1), "ride": {**good(1)["ride"], "pickup_datetime": "2150-06-01T12:00:00"}}
    )
    forged["kinesis"]["approximateArrivalTimestamp"] = datetime(2150, 6, 1, 16, tzinfo=UTC).timestamp()
    handle(event(forged), None, world.service)
    assert not any("dt=2150" in k for k in world.captures.objects), sorted(world.captures.objects)


@pytest.mark.parametrize("records", [[{}], [1], [{"kinesis": {}}]])
def test_a_malformed_records_list_is_an_answer_not_an_exception(world: World, records: list[Any]) -> None:
    """`{"Records": [{}]}` by direct invoke: _parse_record raises KeyError/TypeError out of the handler
    (a function error counted in PredictErrors), where a malformed direct ride gets {"error", "reasons"}."""
    answer = handle({"Records": records}, None, world.service)
    assert "error" in answer or answer == {"batchItemFailures": []}


# -------------------------------------------------------- 1b/2. rejected rides stored twice by a retry


def test_a_retried_batch_does_not_store_its_rejections_twice() -> None:
    """Batch [good s1, bad s2]; the capture write fails -> s1 retried; Lambda re-delivers from s1, so s2
    is rejected again. The rejected-rides key is named by the *processing* hour (contracts.rejected_key),
    so a retry (or make replay-failures) in a later hour writes a second object holding s2, and the
    monitor's S3Rejected.count (lambda_monitor/aws.py:84) counts every one: RejectedShare is inflated."""
    clock = [datetime(2023, 3, 6, 19, 59, 50, tzinfo=UTC)]
    captures, rejected = InMemoryObjects(), InMemoryObjects()
    w = make_world()
    service = PredictService(
        w.service.models,
        InMemoryStream(),
        captures,
        rejected,
        keyed_ids(),
        RetryPolicy(max_attempts=1),
        sleep=lambda _s: None,
        now=lambda: clock[0],
    )
    batch = [kinesis_record(1, good(1)), kinesis_record(2, None, raw=b"{bad")]
    captures.down = True
    assert failures(handle(event(*batch), None, service)) == ["1"]
    captures.down, clock[0] = False, clock[0] + timedelta(minutes=5)  # the retry, in the next hour
    assert failures(handle(event(*batch), None, service)) == []
    stored = [r.sequence_number for body in rejected.objects.values() for r in decode_rejected(body)]
    assert stored.count("2") == 1, (
        f"record 2 stored as rejected {stored.count('2')} times: {sorted(rejected.objects)}"
    )


# --------------------------------------------------------------------------------- 3. monitor state


def test_a_deeply_nested_state_is_set_aside_not_a_failure_of_every_run(reference: dict[str, object]) -> None:  # noqa: F811
    """decode_state catches ValueError only; json.loads raises RecursionError on a deeply nested body, so
    _last_end's recovery (set aside, restart) never runs: every scheduled run fails, the state is never
    rewritten, the monitor is stuck for good (issue 14 point 3)."""
    ports = _ports(reference)
    ports.state = MemoryState(b"[" * 100_000)
    summary = run_event({}, ports, CONFIG, NOW)
    assert summary["state_problem"]["field"] == "body"


# ---------------------------------------------------------------------------- 4. bundle smoke test


def _stump(threshold: float, right_value: float) -> bytes:
    """tiny_bundle's shape: 5 min, plus `right_value` for rides longer than `threshold` miles."""
    return broken_bundle(
        feature=np.array([DISTANCE, 0, 0], dtype=np.int32),
        threshold=np.array([threshold, 0.0, 0.0]),
        value=np.array([0.0, 0.0, right_value]),
    )


def test_a_bundle_that_passes_the_smoke_test_does_not_deliver_absurd_durations() -> None:
    """The smoke rides stop at 21.39 miles; a bundle answering -1,000,000 min past 22 miles passes smoke,
    is followed, and a valid 30-mile ride is delivered with -999,995 minutes (serving checks only
    isfinite: lambda_predict/service.py _answers)."""
    bundle = load_bundle(_stump(22.0, -1_000_000.0))
    smoke_test(bundle)  # passes
    w = make_world()
    object.__setattr__(w.service.models.current(), "predictor", bundle)
    handle(event(kinesis_record(1, good(1, 30.0))), None, w.service)
    delivered = [json.loads(e.data)["prediction"]["ride_duration"] for e in w.stream.records]
    assert all(d > 0 for d in delivered), f"delivered {delivered}"


def test_a_bundle_with_an_absurd_depth_is_refused_not_walked_for_ever() -> None:
    """`depth` is never bounded (trip_core/bundle.py _check_structure); a tree with more than 64 leaves is
    walked `depth` steps (_walk), so depth=2**40 makes load+smoke_test spin: the cold start or hot swap
    times out instead of refusing the bundle (no BundleRefused, the pointer is never remembered)."""
    code = textwrap.dedent(
        """
        import numpy as np
        from tests.doubles.predict import synthetic_bundle
        from trip_core.bundle import dump_bundle, load_bundle
        from trip_core.smoke import BundleRefused, smoke_test
        arrays = dict(load_bundle(synthetic_bundle(n_trees=1, depth=7)).arrays)
        arrays["depth"] = np.array(2**40, dtype=np.int64)
        try:
            smoke_test(load_bundle(dump_bundle({"model_name": "trip-duration"}, arrays)))
        except (BundleRefused, ValueError) as exc:
            print("refused", exc)
        """
    )
    try:
        subprocess.run([sys.executable, "-c", code], timeout=30, check=False, cwd=".")
    except subprocess.TimeoutExpired:
        pytest.fail("load_bundle + smoke_test still running after 30 s on depth=2**40")


# ------------------------------------------------------------------------ 3b. retrain function errors


def test_a_retrain_function_that_fails_every_run_raises_an_alarm() -> None:
    """Issue 14 measured "nothing alarms on ... monitor/retrain function errors"; the monitor got
    MonitorFunctionErrorsAlarm, the retrain function (SNS + schedule triggered) still has no AWS/Lambda
    Errors alarm: a loop that crashes on every alarm and every rollback check is silent."""
    from infra.replay.template import Template

    document = Template.load().document
    watched = [
        json.dumps(r["Properties"].get("Dimensions", []))
        for r in document["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "AWS/Lambda"
    ]
    assert any("RetrainFunction" in d for d in watched), watched
