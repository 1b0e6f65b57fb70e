"""The safe rollout's core on the deployed stack (LocalStack): the predict function follows a traffic plan
(a shadow scoring every ride beside the live model, a canary answering its share, both captured paired);
an operator's approval of a version awaiting it starts its canary through the retrain function; the
canary's alarm stops it. The challengers are the live bundle under other version names, so every answer
is checked against the live model in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.aws import client
from infra.harness.poll import poll
from infra.harness.stack import Stack
from infra.harness.streams import StreamReader
from lambda_retrain.audit import read_state, write_state
from lambda_retrain.aws import S3Store
from tests.e2e.conftest import put_rides
from tests.e2e.test_stack import live_model, month_rides
from trip_core.contracts import LIVE_POINTER_KEY, utc_iso, version_pointer_key
from trip_core.plan import TrafficPlan, in_canary, live_document, plan_of

pytestmark = pytest.mark.localstack

SHADOW, CANARY = "e2e-shadow", "e2e-canary"
RIDES = 80


@pytest.fixture
def models(stack: Stack) -> Iterator[S3Store]:
    """The models bucket, with the live pointer and the loop state put back as they were afterwards, and
    the predict function following the live model alone again before the next test."""
    store = S3Store(stack["ModelsBucketName"], client("s3"))
    pointer = store.get(LIVE_POINTER_KEY)
    state = read_state(store)
    yield store
    assert pointer is not None
    store.put(LIVE_POINTER_KEY, pointer, "application/json")
    write_state(store, state)
    reader, live = StreamReader(stack["PredictionsStreamName"]), stack.live().version

    def live_alone() -> bool:
        put_rides(stack, month_rides(1, 97_000 + len(reader.records)))
        return bool(reader.read()) and all(r["version"] == live for r in reader.records[-1:])

    poll(live_alone, timeout=90, what="the predict function back on the live model alone")


def test_the_predict_function_follows_the_plan_shadow_and_canary(stack: Stack, models: S3Store) -> None:
    live, _ = live_model(stack)
    for version in (SHADOW, CANARY):
        body = replace(live, version=version).to_json().encode()
        models.put(version_pointer_key(version), body, "application/json")
    plan = TrafficPlan(shadow=SHADOW, canary=CANARY, canary_share=0.5, updated_at=utc_iso(datetime.now(UTC)))
    models.put(LIVE_POINTER_KEY, live_document(live, plan), "application/json")
    reader = StreamReader(stack["PredictionsStreamName"])
    since = datetime.now(UTC)
    predictions = _served_under_plan(stack, reader)

    by_version: dict[str, int] = {}
    for record in predictions:
        version = record["version"]
        by_version[version] = by_version.get(version, 0) + 1
        assert version == (CANARY if in_canary(record["prediction"]["prediction_id"], plan) else live.version)
    assert set(by_version) == {live.version, CANARY}, by_version  # each arm answered some rides
    captured = stack.captures_since(since)
    arms = {(b.model_version, b.paired_version) for b in captured}
    assert arms == {(live.version, SHADOW), (CANARY, live.version)}, arms
    for batch in captured:  # the challengers are the live bundle: the paired answers are the same
        assert batch.paired_prediction == batch.prediction


def _served_under_plan(stack: Stack, reader: StreamReader) -> list[dict[str, Any]]:
    """Rides sent until the function follows the plan (its pointer TTL), then one batch of RIDES."""

    def planned() -> list[dict[str, Any]] | None:
        probe = month_rides(1, 95_000 + len(reader.records))
        put_rides(stack, probe)
        records = reader.read()
        return records if any(r["version"] == CANARY for r in records) or _shadowed(stack) else None

    poll(planned, timeout=90, what="the predict function following the traffic plan")
    first = len(reader.records)
    put_rides(stack, month_rides(RIDES, 96_000))
    return reader.wait_for(first + RIDES, timeout=120)[first:]


def _shadowed(stack: Stack) -> bool:
    return any(
        b.paired_version == SHADOW for b in stack.captures_since(datetime.now(UTC) - timedelta(minutes=2))
    )


def test_an_approval_starts_the_canary_and_its_alarm_stops_it(stack: Stack, models: S3Store) -> None:
    live, _ = live_model(stack)
    models.put(
        version_pointer_key(CANARY), replace(live, version=CANARY).to_json().encode(), "application/json"
    )
    models.put(LIVE_POINTER_KEY, live_document(live, TrafficPlan(shadow=CANARY)), "application/json")
    rollout = {
        "version": CANARY, "live_version": live.version, "policy": "approve",
        "started_at": utc_iso(datetime.now(UTC)), "stage": "awaiting_approval",
        "stage_started_at": utc_iso(datetime.now(UTC)),
    }  # fmt: skip
    write_state(models, {**read_state(models), "rollout": rollout})

    approve = {"action": "approve", "version": CANARY, "reason": "e2e: the evidence is good"}
    (approved,) = stack.invoke("RetrainFunctionName", approve)["decisions"]
    assert approved["verdict"].startswith("canary at 10% of the rides: approved by"), approved
    assert plan_of(json.loads(models.get(LIVE_POINTER_KEY) or b"{}"), live.version).canary == CANARY

    # the alarm's own path: CloudWatch -> the alarm topic -> the retrain function (it re-checks the state)
    alarm, cloudwatch = stack["CanaryMAERatioAlarmName"], client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="e2e: the canary is worse")
    try:
        poll(
            lambda: read_state(models)["rollout"]["stage"] == "retired",
            timeout=90,
            what="the canary alarm stopping the canary",
        )
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="e2e: done")
    document = json.loads(models.get(LIVE_POINTER_KEY) or b"{}")
    assert plan_of(document, live.version).empty and document["version"] == live.version
    assert "canary stopped" in read_state(models)["rollout"]["verdict"]
