"""Model loading at cold start, TTL re-check and atomic hot swap, version pin, config; bundles refused
by the smoke test (kept model on a hot swap, failed cold start, BundleRefused as the alarm watches it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cfnlint.decode import cfn_yaml

from lambda_predict.adapters import S3ModelSource
from lambda_predict.config import PredictConfig
from lambda_predict.model_provider import (
    ModelLoadError,
    ModelProvider,
    emit_bundle_refused,
    emit_model_read_failed,
)
from tests.doubles.predict import InMemoryObjects, broken_bundle, publish, tiny_bundle
from trip_core.bundle import BundleError, load_bundle
from trip_core.config import ConfigError
from trip_core.contracts import MAX_BUNDLE_BYTES
from trip_core.pointer import ModelPointer

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Refusals(list[tuple[str, str]]):
    """What the provider counts in BundleRefused: (version, reason) per refusal."""

    def __call__(self, pointer: ModelPointer, reason: str) -> None:
        self.append((pointer.version, reason))


def provider(
    bucket: InMemoryObjects,
    clock: Clock,
    pin: str | None = None,
    ttl: float = 60,
    refusals: Refusals | None = None,
    read_failures: list[str] | None = None,
) -> ModelProvider:
    key = f"serving/versions/{pin}.json" if pin else "serving/live.json"
    return ModelProvider(
        bucket,
        key,
        load_bundle,
        ttl_seconds=ttl,
        pinned=pin is not None,
        clock=clock,
        on_refused=Refusals() if refusals is None else refusals,
        on_read_failed=(read_failures if read_failures is not None else []).append,
    )


def one_ride_prediction(models: ModelProvider) -> float:
    features = np.zeros((1, 12))
    features[0, 3] = 5.0  # trip_distance
    return float(models.current().predictor.predict(features)[0])


def test_cold_start_loads_the_live_version() -> None:
    bucket = InMemoryObjects()
    publish(bucket, "3", tiny_bundle())
    loaded = provider(bucket, Clock()).load_initial()
    assert (loaded.name, loaded.version) == ("trip-duration", "3")


def test_same_version_within_ttl_does_not_read_s3() -> None:
    bucket, clock = InMemoryObjects(), Clock()
    publish(bucket, "3", tiny_bundle())
    models = provider(bucket, clock)
    models.load_initial()
    reads = len(bucket.reads)
    publish(bucket, "4", tiny_bundle(base=50.0))
    clock.now += 59
    assert models.current().version == "3"
    assert len(bucket.reads) == reads


def test_pointer_change_after_ttl_swaps_to_the_new_version() -> None:
    bucket, clock = InMemoryObjects(), Clock()
    publish(bucket, "3", tiny_bundle())
    models = provider(bucket, clock)
    models.load_initial()
    assert one_ride_prediction(models) == 8.0
    publish(bucket, "4", tiny_bundle(base=50.0))
    clock.now += 60
    assert models.current().version == "4"
    assert one_ride_prediction(models) == 53.0
    # the next check is one TTL later; an unchanged pointer does not re-read the bundle
    clock.now += 60
    bundle_reads = sum(key.endswith("bundle.npz") for key in bucket.reads)
    assert models.current().version == "4"
    assert sum(key.endswith("bundle.npz") for key in bucket.reads) == bundle_reads


def test_unchanged_pointer_after_ttl_keeps_the_same_object() -> None:
    bucket, clock = InMemoryObjects(), Clock()
    publish(bucket, "3", tiny_bundle())
    models = provider(bucket, clock)
    first = models.load_initial()
    clock.now += 61
    assert models.current() is first


def test_failed_refresh_keeps_serving_and_waits_another_ttl() -> None:
    bucket, clock = InMemoryObjects(), Clock()
    publish(bucket, "3", tiny_bundle())
    models = provider(bucket, clock)
    models.load_initial()
    bucket.down = True
    clock.now += 61
    assert models.current().version == "3"
    bucket.down = False
    publish(bucket, "4", tiny_bundle())
    clock.now += 30
    assert models.current().version == "3"  # no re-check before another TTL
    clock.now += 31
    assert models.current().version == "4"


def test_a_pointer_taken_away_keeps_the_model_and_is_counted_at_each_check() -> None:
    """A warm function keeps serving; ModelReadFailed (the alarm's metric) counts every TTL check that
    finds no pointer, and none once it is back."""
    bucket, clock = InMemoryObjects(), Clock()
    failures: list[str] = []
    publish(bucket, "3", tiny_bundle())
    models = provider(bucket, clock, read_failures=failures)
    models.load_initial()
    pointer = bucket.objects.pop("serving/live.json")
    for _ in range(3):
        clock.now += 61
        assert models.current().version == "3"
    assert len(failures) == 3 and all("cannot read model pointer" in f for f in failures)
    bucket.objects["serving/live.json"] = pointer
    clock.now += 61
    assert models.current().version == "3" and len(failures) == 3


def test_a_cold_start_without_a_pointer_fails_and_is_counted() -> None:
    bucket = InMemoryObjects()
    failures: list[str] = []
    with pytest.raises(ModelLoadError, match="cannot read model pointer"):
        provider(bucket, Clock(), read_failures=failures).load_initial()
    assert len(failures) == 1


def test_bad_checksum_of_a_new_version_is_not_swapped_in() -> None:
    bucket, clock = InMemoryObjects(), Clock()
    publish(bucket, "3", tiny_bundle())
    models = provider(bucket, clock)
    models.load_initial()
    pointer = publish(bucket, "4", tiny_bundle(base=50.0))
    bucket.objects[pointer.bundle_key] = tiny_bundle(base=99.0)  # not what the pointer's sha256 says
    clock.now += 61
    assert models.current().version == "3"


def test_pinned_version_ignores_the_live_pointer() -> None:
    bucket, clock = InMemoryObjects(), Clock()
    publish(bucket, "2", tiny_bundle(base=1.0), live=False)
    publish(bucket, "3", tiny_bundle())
    models = provider(bucket, clock, pin="2")
    assert models.load_initial().version == "2"
    publish(bucket, "4", tiny_bundle())
    clock.now += 10_000
    reads = len(bucket.reads)
    assert models.current().version == "2"
    assert len(bucket.reads) == reads


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no pointer", "cannot read model pointer s3 key 'serving/live.json'"),
        ("no bundle", "cannot read bundle 'models/trip-duration/3/bundle.npz' of model version 3"),
        ("bad checksum", "bundle of model version 3 is refused: bundle checksum mismatch"),
        ("bad pointer", "cannot read model pointer s3 key 'serving/live.json': model pointer lacks field(s)"),
    ],
)
def test_init_fails_with_a_clear_message(setup: str, message: str) -> None:
    bucket = InMemoryObjects()
    if setup != "no pointer":
        pointer = publish(bucket, "3", tiny_bundle())
        if setup == "no bundle":
            del bucket.objects[pointer.bundle_key]
        elif setup == "bad checksum":
            bucket.objects[pointer.bundle_key] = b"corrupt"
        elif setup == "bad pointer":
            bucket.objects["serving/live.json"] = json.dumps({"version": "3"}).encode()
    with pytest.raises(ModelLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        provider(bucket, Clock()).load_initial()


# A bundle the smoke test refuses, each in its own way
REFUSED = {
    "finite but wrong": (tiny_bundle(base=-1_000_000.0), "smoke rides predicted outside [1, 60] min"),
    "NaN": (tiny_bundle(base=float("nan")), "48 of 48 smoke rides predicted outside"),
    "column index out of range": (
        broken_bundle(feature=np.array([12, 0, 0], dtype=np.int32)),
        "'feature' holds indices in [0, 12], outside [0, 12)",
    ),
    "corrupt": (b"PK\x05\x06" + b"\0" * 18, "corrupt or incomplete"),
}


def bundle_reads(bucket: InMemoryObjects, version: str) -> int:
    return sum(key == f"models/trip-duration/{version}/bundle.npz" for key in bucket.reads)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_hot_swap_to_a_refused_bundle_keeps_the_model_and_counts_it(case: str) -> None:
    bundle, reason = REFUSED[case]
    bucket, clock, refusals = InMemoryObjects(), Clock(), Refusals()
    publish(bucket, "3", tiny_bundle())
    models = provider(bucket, clock, refusals=refusals)
    models.load_initial()
    publish(bucket, "4", bundle)
    clock.now += 61
    assert models.current().version == "3" and one_ride_prediction(models) == 8.0
    [(version, why)] = refusals
    assert version == "4" and reason in why
    # while the pointer names it: counted at every check (the alarm stays up), never read again
    clock.now += 61
    assert models.current().version == "3"
    assert refusals == [("4", why), ("4", why)] and bundle_reads(bucket, "4") == 1
    # a new pointer to a sound bundle is followed
    publish(bucket, "5", tiny_bundle(base=20.0))
    clock.now += 61
    assert models.current().version == "5" and one_ride_prediction(models) == 23.0
    assert len(refusals) == 2


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_cold_start_on_a_refused_bundle_fails_with_the_reason_and_counts_it(case: str) -> None:
    bundle, reason = REFUSED[case]
    bucket, refusals = InMemoryObjects(), Refusals()
    publish(bucket, "3", bundle)
    with pytest.raises(ModelLoadError, match="bundle of model version 3 is refused: ") as info:
        provider(bucket, Clock(), refusals=refusals).load_initial()
    assert reason in str(info.value)
    assert [version for version, _ in refusals] == ["3"]


def test_an_unreadable_bundle_is_not_a_refusal() -> None:
    """S3 failing is transient: the model is kept, nothing is counted in BundleRefused, the next check
    reads the bundle again."""
    bucket, clock, refusals = InMemoryObjects(), Clock(), Refusals()
    publish(bucket, "3", tiny_bundle())
    models = provider(bucket, clock, refusals=refusals)
    models.load_initial()
    pointer = publish(bucket, "4", tiny_bundle(base=20.0))
    body = bucket.objects.pop(pointer.bundle_key)
    clock.now += 61
    assert models.current().version == "3" and refusals == []
    bucket.objects[pointer.bundle_key] = body
    clock.now += 61
    assert models.current().version == "4"


class Body:
    def __init__(self, data: bytes) -> None:
        self.data, self.closed = data, False

    def read(self) -> bytes:
        return self.data

    def close(self) -> None:
        self.closed = True


class SizedS3:
    """get_object answering a given ContentLength (what S3 says before the body is read)."""

    def __init__(self, size: int) -> None:
        self.body, self.size = Body(b"bundle"), size

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"ContentLength": self.size, "Body": self.body}


def test_an_object_too_large_to_be_a_bundle_is_refused_before_its_body_is_read() -> None:
    s3 = SizedS3(MAX_BUNDLE_BYTES + 1)
    with pytest.raises(BundleError, match="over MAX_BUNDLE_BYTES"):
        S3ModelSource(s3, "models").read("models/m/4/bundle.npz")
    assert s3.body.closed
    assert S3ModelSource(SizedS3(MAX_BUNDLE_BYTES), "models").read("k") == b"bundle"


@pytest.mark.parametrize(
    ("emit", "alarm_name"),
    [
        (lambda: emit_bundle_refused(publish(None, "4", b""), "smoke test: ..."), "BundleRefusedAlarm"),
        (lambda: emit_model_read_failed("cannot read model pointer ..."), "ModelReadFailedAlarm"),
    ],
)
def test_counts_are_emitted_at_once_as_their_alarms_watch_them(
    emit: Any, alarm_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMF on stdout when it happens (a failed cold start has no invocation to flush metrics), in the
    namespace, name and service dimension of the template's alarm."""
    resources = dict(cfn_yaml.load(str(TEMPLATE)))["Resources"]
    service = resources["PredictFunction"]["Properties"]["Environment"]["Variables"][
        "POWERTOOLS_SERVICE_NAME"
    ]
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)
    capsys.readouterr()
    emit()
    [line] = capsys.readouterr().out.splitlines()
    emf = json.loads(line)
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    alarm = resources[alarm_name]["Properties"]
    assert directive["Namespace"] == alarm["Namespace"]
    assert [m["Name"] for m in directive["Metrics"]] == [alarm["MetricName"]] and emf[
        alarm["MetricName"]
    ] == [1.0]
    assert {name: emf[name] for name in directive["Dimensions"][0]} == {
        d["Name"]: d["Value"] for d in alarm["Dimensions"]
    }
    assert (alarm["Statistic"], alarm["Threshold"], alarm["TreatMissingData"]) == ("Sum", 1, "notBreaching")
    assert {"Ref": "AlarmTopic"} in alarm["AlarmActions"]


ENV = {
    "MODELS_BUCKET": "models",
    "PREDICTIONS_STREAM": "predictions",
    "CAPTURE_BUCKET": "capture",
    "REJECTED_BUCKET": "rejected",
    "PREDICTION_ID_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:prediction-id-key",
}


def test_config_defaults() -> None:
    config = PredictConfig.from_env(ENV)
    assert config.pointer_key == "serving/live.json" and not config.pinned
    assert config.pointer_ttl_seconds == 60.0


def test_config_pin_and_ttl() -> None:
    config = PredictConfig.from_env({**ENV, "MODEL_VERSION_PIN": "7", "POINTER_TTL_SECONDS": "5"})
    assert config.pointer_key == "serving/versions/7.json" and config.pinned
    assert config.pointer_ttl_seconds == 5.0


def test_config_names_every_problem() -> None:
    env = {"MODELS_BUCKET": "models", "POINTER_TTL_SECONDS": "soon"}
    with pytest.raises(ConfigError) as info:
        PredictConfig.from_env(env)
    text = str(info.value)
    for name in ("PREDICTIONS_STREAM", "CAPTURE_BUCKET", "REJECTED_BUCKET", "POINTER_TTL_SECONDS"):
        assert name in text
    assert "MODELS_BUCKET" not in text
    with pytest.raises(ConfigError, match="POINTER_TTL_SECONDS"):
        PredictConfig.from_env({**ENV, "POINTER_TTL_SECONDS": "-1"})
