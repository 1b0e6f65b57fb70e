"""Model loading at cold start, TTL re-check and atomic hot swap, version pin, config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lambda_predict.config import PredictConfig
from lambda_predict.model_provider import ModelLoadError, ModelProvider
from tests.doubles.predict import InMemoryObjects, publish, tiny_bundle
from trip_core.bundle import load_bundle
from trip_core.config import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider(bucket: InMemoryObjects, clock: Clock, pin: str | None = None, ttl: float = 60) -> ModelProvider:
    key = f"serving/versions/{pin}.json" if pin else "serving/live.json"
    return ModelProvider(bucket, key, load_bundle, ttl_seconds=ttl, pinned=pin is not None, clock=clock)


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
        ("bad checksum", "bundle of model version 3 is unusable: bundle checksum mismatch"),
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
