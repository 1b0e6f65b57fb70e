"""The traffic plan (trip_core.plan) and how the prediction function follows it: parsing, deterministic
canary assignment, challengers loaded beside the live model (or left out), shadow and canary answers in
the stream and the capture."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from lambda_predict.model_provider import ModelProvider
from lambda_predict.service import PredictService
from tests.doubles.kinesis import lambda_record
from tests.doubles.predict import (
    InMemoryObjects,
    InMemoryStream,
    broken_bundle,
    keyed_ids,
    publish,
    tiny_bundle,
)
from trip_core.bundle import load_bundle
from trip_core.capture import CaptureBatch, decode_capture, encode_capture
from trip_core.plan import (
    MAX_CANARY_SHARE,
    PlanError,
    TrafficPlan,
    canary_point,
    in_canary,
    live_document,
    plan_of,
)
from trip_core.pointer import ModelPointer

NOW = datetime(2023, 3, 6, 19, 30, 5, tzinfo=UTC)
ARRIVAL = 1678131002.0  # 2023-03-06T19:30:02Z
SHARD = "shardId-000000000000"
LIVE_MINUTES, SHADOW_MINUTES, CANARY_MINUTES = 8.0, 14.0, 24.0  # tiny bundles' answers at 3 miles


# ------------------------------------------------------------------------------------------ parsing


def test_a_plan_round_trips_through_the_live_pointer() -> None:
    pointer = publish(None, "3", tiny_bundle())
    plan = TrafficPlan(
        shadow="4", canary="5", canary_share=0.1, updated_at="2023-03-06T00:00:00Z", reason="r"
    )
    document = json.loads(live_document(pointer, plan))
    assert ModelPointer.from_dict(document) == pointer
    assert plan_of(document, "3") == plan
    assert "plan" not in json.loads(live_document(pointer, TrafficPlan()))


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"canary": "5", "canary_share": 0.0}, "canary_share"),
        ({"canary": "5", "canary_share": MAX_CANARY_SHARE + 0.01}, "canary_share"),
        ({"canary": "5", "canary_share": "0.1"}, "canary_share"),
        ({"canary": "5", "canary_share": True}, "canary_share"),
        ({"canary_share": 0.1}, "canary_share"),
        ({"shadow": "4", "canary": "4", "canary_share": 0.1}, "both"),
        ({"shadow": "../live"}, "shadow"),
        ({"shadow": ""}, "shadow"),
        ({"shadow": 4}, "shadow"),
        ({"canary": "x" * 129, "canary_share": 0.1}, "canary"),
        ({"shadow": "4", "weights": [1]}, "weights"),
        ({"reason": ["x"]}, "reason"),
        ("shadow=4", "object"),
        ({"shadow": "3"}, "live version"),
    ],
)
def test_a_malformed_plan_is_refused_naming_the_field(raw: Any, field: str) -> None:
    with pytest.raises(PlanError, match=field):
        plan_of({"plan": raw}, "3")


# ------------------------------------------------------------------------------------ assignment


def test_canary_assignment_is_deterministic_and_takes_its_share() -> None:
    plan = TrafficPlan(canary="5", canary_share=0.1)
    ids = [f"2023030619-{i:032x}" for i in range(20_000)]
    first = [in_canary(pid, plan) for pid in ids]
    assert first == [in_canary(pid, plan) for pid in ids]  # a retried record: the same arm
    share = sum(first) / len(ids)
    assert abs(share - 0.1) < 4 * (0.1 * 0.9 / len(ids)) ** 0.5  # within 4 binomial sd
    other = [in_canary(pid, TrafficPlan(canary="6", canary_share=0.1)) for pid in ids]
    both = sum(a and b for a, b in zip(first, other, strict=True)) / len(ids)
    assert both < 0.02  # each canary its own sample (independent: 0.01 expected)
    assert all(0 <= canary_point(pid, "5") < 1 for pid in ids[:100])


# ------------------------------------------------------------------------------------- the provider


def models_with_plan(
    plan: TrafficPlan, shadow: bytes | None = None, canary: bytes | None = None
) -> InMemoryObjects:
    bucket = InMemoryObjects()
    live = publish(bucket, "3", tiny_bundle(base=5.0))
    publish(bucket, "4", shadow if shadow is not None else tiny_bundle(base=11.0), live=False)
    publish(bucket, "5", canary if canary is not None else tiny_bundle(base=21.0), live=False)
    bucket.objects["serving/live.json"] = live_document(live, plan)
    return bucket


class Counts:
    def __init__(self) -> None:
        self.read_failed: list[str] = []
        self.refused: list[str] = []


def provider(
    bucket: InMemoryObjects, counts: Counts | None = None, pinned: bool = False, load: Any = load_bundle
) -> tuple[ModelProvider, list[float]]:
    counts = counts or Counts()
    clock = [0.0]
    models = ModelProvider(
        bucket,
        "serving/versions/3.json" if pinned else "serving/live.json",
        load,
        ttl_seconds=60,
        pinned=pinned,
        clock=lambda: clock[0],
        on_refused=lambda pointer, reason: counts.refused.append(pointer.version),
        on_read_failed=counts.read_failed.append,
    )
    models.load_initial()
    return models, clock


def test_the_plan_s_challengers_load_beside_the_live_model() -> None:
    models, _ = provider(models_with_plan(TrafficPlan(shadow="4", canary="5", canary_share=0.2)))
    serving = models.serving()
    assert (
        serving.live.version,
        serving.shadow and serving.shadow.version,
        serving.canary and serving.canary.version,
    ) == ("3", "4", "5")


def test_a_challenger_that_fails_the_smoke_test_is_left_out_and_counted() -> None:
    counts = Counts()
    bad = broken_bundle(baseline=np.array(-999_997.0))
    models, _ = provider(models_with_plan(TrafficPlan(shadow="4"), shadow=bad), counts)
    serving = models.serving()
    assert serving.shadow is None and serving.live.version == "3"
    assert counts.refused == ["4"]


def test_a_missing_challenger_pointer_is_left_out_and_counted() -> None:
    counts = Counts()
    bucket = models_with_plan(TrafficPlan(canary="5", canary_share=0.1))
    del bucket.objects["serving/versions/5.json"]
    models, _ = provider(bucket, counts)
    assert models.serving().canary is None
    assert any("serving/versions/5.json" in r for r in counts.read_failed)


def test_a_malformed_plan_leaves_the_live_model_serving_every_ride_and_is_counted() -> None:
    counts = Counts()
    bucket = models_with_plan(TrafficPlan())
    document = json.loads(bucket.objects["serving/live.json"])
    bucket.objects["serving/live.json"] = json.dumps(
        {**document, "plan": {"canary": "5", "canary_share": 2}}
    ).encode()
    models, _ = provider(bucket, counts)
    serving = models.serving()
    assert serving.live.version == "3" and serving.canary is None and serving.plan.empty
    assert any("traffic plan" in r for r in counts.read_failed)


def test_a_plan_change_is_followed_on_the_ttl_and_loaded_models_are_kept() -> None:
    bucket = models_with_plan(TrafficPlan(shadow="4"))
    models, clock = provider(bucket)
    shadow = models.serving().shadow
    live = ModelPointer.from_json(bucket.objects["serving/live.json"])
    bucket.objects["serving/live.json"] = live_document(live, TrafficPlan(canary="4", canary_share=0.1))
    assert models.serving().shadow is shadow  # before the TTL
    clock[0] = 61
    serving = models.serving()
    assert serving.shadow is None and serving.canary is shadow  # the same loaded model, not re-read
    bucket.objects["serving/live.json"] = live.to_json().encode()  # a promotion or rollback: no plan
    clock[0] = 122
    assert models.serving().canary is None


def test_a_pinned_function_follows_no_plan() -> None:
    bucket = models_with_plan(TrafficPlan(shadow="4"))
    bucket.objects["serving/versions/3.json"] = bucket.objects["serving/live.json"]
    models, _ = provider(bucket, pinned=True)
    assert models.serving().shadow is None


# -------------------------------------------------------------------------------------- the service


class FailsAfterSmoke:
    """A predictor that passes the smoke test (its first call), then answers `after` (raises if None)."""

    def __init__(self, inner: Any, after: float | None) -> None:
        self._inner, self._after, self._calls = inner, after, 0
        self.model_name = inner.model_name

    def predict(self, features: Any) -> Any:
        self._calls += 1
        if self._calls == 1:
            return self._inner.predict(features)
        if self._after is None:
            raise RuntimeError("challenger broke")
        return np.full(len(features), self._after)


def loader_breaking(bundle: bytes, after: float | None) -> Any:
    """load_bundle, with the model of `bundle` failing after its smoke test."""
    sha = hashlib.sha256(bundle).hexdigest()

    def load(data: bytes, expected_sha256: str | None = None) -> Any:
        predictor = load_bundle(data, expected_sha256)
        return FailsAfterSmoke(predictor, after) if expected_sha256 == sha else predictor

    return load


def service(
    plan: TrafficPlan, load: Any = load_bundle, **bundles: bytes
) -> tuple[PredictService, InMemoryStream, InMemoryObjects, InMemoryObjects]:
    models, _ = provider(models_with_plan(plan, **bundles), load=load)
    stream, captures, rejected = InMemoryStream(), InMemoryObjects(), InMemoryObjects()
    return (
        PredictService(models, stream, captures, rejected, keyed_ids(), now=lambda: NOW),
        stream,
        captures,
        rejected,
    )


def batch(n: int, first: int = 1) -> list[dict[str, Any]]:
    return [
        lambda_record(
            SHARD,
            seq,
            {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.0}, "ride_id": seq},
            None,
            ARRIVAL,
        )
        for seq in range(first, first + n)
    ]


def answers(stream: InMemoryStream) -> dict[int, tuple[str, float]]:
    out = {}
    for entry in stream.records:
        record = json.loads(entry.data)
        out[record["prediction"]["ride_id"]] = (record["version"], record["prediction"]["ride_duration"])
    return out


def captures_of(bucket: InMemoryObjects) -> dict[str, CaptureBatch]:
    return {key: decode_capture(body) for key, body in bucket.objects.items()}


def test_a_shadow_scores_every_ride_beside_the_live_model_and_answers_none() -> None:
    svc, stream, captures, _ = service(TrafficPlan(shadow="4"))
    outcome = svc.process_batch(batch(50))
    assert outcome.predicted == 50 and outcome.answered_by == {"3": 50}
    assert set(answers(stream).values()) == {("3", LIVE_MINUTES)}
    [capture] = captures_of(captures).values()
    assert capture.model_version == "3" and capture.paired_version == "4"
    assert capture.paired_prediction == [SHADOW_MINUTES] * 50 and capture.prediction == [LIVE_MINUTES] * 50


def test_a_canary_answers_its_share_the_same_rides_on_a_retry_and_each_arm_is_captured_apart() -> None:
    svc, stream, captures, _ = service(TrafficPlan(canary="5", canary_share=0.3))
    outcome = svc.process_batch(batch(400))
    first = answers(stream)
    by_canary = {ride for ride, (version, _) in first.items() if version == "5"}
    assert 0.2 < len(by_canary) / 400 < 0.4 and outcome.answered_by == {
        "3": 400 - len(by_canary),
        "5": len(by_canary),
    }
    assert {first[r][1] for r in by_canary} == {CANARY_MINUTES}
    stored = captures_of(captures)
    canary_keys = [k for k in stored if k.endswith("_canary.json.gz")]
    [live_key] = [k for k in stored if k not in canary_keys]
    [canary_capture] = [stored[k] for k in canary_keys]
    assert canary_capture.model_version == "5" and canary_capture.paired_version == "3"
    assert set(canary_capture.ride_id) == by_canary and canary_capture.paired_prediction == [
        LIVE_MINUTES
    ] * len(by_canary)
    assert stored[live_key].paired_version is None and len(stored[live_key]) == 400 - len(by_canary)
    stream.records.clear()
    svc.process_batch(batch(400))  # Lambda delivers the batch again
    assert answers(stream) == first


def test_a_canary_without_an_answer_leaves_the_live_answer_and_loses_no_ride() -> None:
    canary = tiny_bundle(base=21.0)
    load = loader_breaking(canary, after=float("nan"))
    svc, stream, _, rejected = service(TrafficPlan(canary="5", canary_share=0.5), load, canary=canary)
    outcome = svc.process_batch(batch(100))
    assert outcome.predicted == 100 and outcome.answered_by == {"3": 100} and not rejected.objects
    assert set(answers(stream).values()) == {("3", LIVE_MINUTES)}


def test_a_shadow_that_raises_costs_its_comparison_never_a_ride() -> None:
    shadow = tiny_bundle(base=11.0)
    svc, stream, captures, rejected = service(
        TrafficPlan(shadow="4"), loader_breaking(shadow, None), shadow=shadow
    )
    outcome = svc.process_batch(batch(20))
    assert outcome.predicted == 20 and not rejected.objects
    assert set(answers(stream).values()) == {("3", LIVE_MINUTES)}
    [capture] = captures_of(captures).values()
    assert capture.paired_version == "4" and capture.paired_prediction == [None] * 20


def test_a_direct_ride_follows_the_plan_too() -> None:
    svc, _, captures, _ = service(TrafficPlan(shadow="4"))
    ride = {
        "ride": {
            "PULocationID": 130,
            "DOLocationID": 205,
            "trip_distance": 3.0,
            "pickup_datetime": "2023-03-06T14:20:00",
        },
        "ride_id": "d",
    }
    outcome = svc.predict_direct(ride, "req-1")
    assert outcome.response["version"] == "3" and outcome.captured
    [capture] = captures_of(captures).values()
    assert capture.paired_version == "4" and capture.paired_prediction == [SHADOW_MINUTES]


def test_a_direct_ride_is_never_the_canarys() -> None:
    """Its prediction id is random: were it in the canary's share, a client asking again could choose
    the arm its ride is judged in."""
    svc, _, _, _ = service(TrafficPlan(canary="4", canary_share=0.5))
    ride = {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.0}, "ride_id": "d"}
    versions = {svc.predict_direct(ride, f"req-{i}").response["version"] for i in range(40)}
    assert versions == {"3"}


def test_a_paired_capture_round_trips_with_missing_answers() -> None:
    capture = CaptureBatch(
        "m",
        "3",
        "2023-03-06T19:30:05Z",
        ["p1", "p2"],
        [1, 2],
        ["2023-03-06T14:00:00"] * 2,
        [1, 2],
        [3, 4],
        [1.0, 2.0],
        [5.0, 6.0],
        "4",
        [7.0, None],
    )
    decoded = decode_capture(encode_capture(capture))
    assert decoded == capture
    assert json.loads(gzip.decompress(encode_capture(capture)))["paired"] == {
        "model_version": "4",
        "prediction": [7.0, None],
    }
