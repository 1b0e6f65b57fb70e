"""The real app module and boto3 adapters against moto S3 + Kinesis."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambda_predict.model_provider import ModelLoadError
from tests.doubles.predict import publish, tiny_bundle
from trip_core.capture import decode_capture, decode_rejected
from trip_core.contracts import prediction_id_hour

ROOT = Path(__file__).parents[2]
APP = ROOT / "lambda_predict" / "app.py"
RIDE_APP = ROOT / "lambda_predict" / "ride_app.py"
EVENTS = ROOT / "tests" / "events"
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "MODELS_BUCKET": "models",
    "PREDICTIONS_STREAM": "predictions",
    "CAPTURE_BUCKET": "capture",
    "REJECTED_BUCKET": "rejected",
    "PREDICTION_ID_SECRET_ARN": "prediction-id-key",
    "POWERTOOLS_SERVICE_NAME": "predict",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@dataclass
class LambdaContext:
    function_name: str = "predict"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:predict"
    aws_request_id: str = "req-42"


def load_app(path: Path = APP) -> ModuleType:
    """A fresh import of the rides-stream app (or of the one-ride app): a cold start."""
    spec = importlib.util.spec_from_file_location("predict_app_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("predict_app_under_test", None)
    spec.loader.exec_module(module)
    return module


class S3Bucket:
    def __init__(self, s3: Any, name: str) -> None:
        self.s3, self.name = s3, name
        self.objects: dict[str, bytes] = {}

    def flush(self) -> None:
        for key, body in self.objects.items():
            self.s3.put_object(Bucket=self.name, Key=key, Body=body)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        kinesis = boto3.client("kinesis")
        for bucket in ("models", "capture", "rejected"):
            s3.create_bucket(Bucket=bucket)
        kinesis.create_stream(StreamName="predictions", ShardCount=1)
        # the stack's generated secret: read once at cold start (moto, like Secrets Manager, serves it)
        boto3.client("secretsmanager").create_secret(Name="prediction-id-key", SecretString="k" * 64)
        yield s3, kinesis


def publish_to_s3(s3: Any, version: str, base: float = 5.0) -> None:
    bucket = S3Bucket(s3, "models")
    publish(bucket, version, tiny_bundle(base=base))  # type: ignore[arg-type]
    bucket.flush()


def read_stream(kinesis: Any) -> list[dict[str, Any]]:
    shard = kinesis.describe_stream(StreamName="predictions")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="predictions", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    records = kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    return [{"key": r["PartitionKey"], **json.loads(r["Data"])} for r in records]


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_kinesis_batch_end_to_end(aws: tuple[Any, Any]) -> None:
    s3, kinesis = aws
    publish_to_s3(s3, "3")
    app = load_app()
    golden = json.loads((EVENTS / "kinesis_batch.json").read_text())
    expected = json.loads((EVENTS / "kinesis_batch.expected.json").read_text())
    assert app.lambda_handler(golden, LambdaContext()) == expected

    predictions = read_stream(kinesis)
    assert [(p["key"], p["version"], p["prediction"]["ride_duration"]) for p in predictions] == [
        ("256", "3", 8.0),
        ("ride-257", "3", 5.0),
        ("258", "3", 8.0),
    ]
    captured, captured_ids = [], []
    for capture_key in keys(s3, "capture"):  # one object per UTC pickup hour
        obj = s3.get_object(Bucket="capture", Key=capture_key)
        assert obj["ContentEncoding"] == "gzip"
        batch = decode_capture(obj["Body"].read())
        captured.extend(batch.ride_id)
        captured_ids.extend(batch.prediction_id)
    assert sorted(map(str, captured)) == ["256", "258", "ride-257"]
    assert sorted(captured_ids) == sorted(p["prediction"]["prediction_id"] for p in predictions)
    (rejected_key,) = keys(s3, "rejected")
    rejections = decode_rejected(s3.get_object(Bucket="rejected", Key=rejected_key)["Body"].read())
    assert [r.reasons[0].field for r in rejections] == ["trip_distance", "data"]


def test_direct_invoke_good_and_bad(aws: tuple[Any, Any]) -> None:
    s3, _ = aws
    publish_to_s3(s3, "3")
    app = load_app(RIDE_APP)
    ride = json.loads((EVENTS / "direct_ride.json").read_text())
    answer = app.lambda_handler(ride, LambdaContext())
    assert prediction_id_hour(answer["prediction"].pop("prediction_id")) is not None  # invoked now
    assert answer == {
        "model": "trip-duration",
        "version": "3",
        "prediction": {"ride_duration": 8.0, "ride_id": 256},
    }
    assert keys(s3, "capture")[0].endswith("/direct_req-42.json.gz")
    bad = app.lambda_handler({"ride_id": 1, "ride": {"trip_distance": "far"}}, LambdaContext())
    assert bad["error"] == "invalid ride"
    assert {r["field"] for r in bad["reasons"]} == {"PULocationID", "DOLocationID", "trip_distance"}


def test_missing_output_stream_reports_records_for_retry(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, _ = aws
    publish_to_s3(s3, "3")
    monkeypatch.setenv("PREDICTIONS_STREAM", "no-such-stream")
    app = load_app()
    app.SERVICE._sleep = lambda _seconds: None
    ride = base64.b64encode(
        json.dumps(
            {"ride_id": 5, "ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": 1}}
        ).encode()
    )
    event = {
        "Records": [
            {
                "eventID": "shardId-000000000001:11",
                "eventSource": "aws:kinesis",
                "kinesis": {
                    "sequenceNumber": "11",
                    "data": ride.decode(),
                    "approximateArrivalTimestamp": 1678131002.0,
                },
            }
        ]
    }
    assert app.lambda_handler(event, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "11"}]}
    assert keys(s3, "capture") == []


def test_hot_swap_through_s3(aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    s3, _ = aws
    monkeypatch.setenv("POINTER_TTL_SECONDS", "0")
    publish_to_s3(s3, "3")
    app = load_app(RIDE_APP)
    ride = json.loads((EVENTS / "direct_ride.json").read_text())
    assert app.lambda_handler(ride, LambdaContext())["version"] == "3"
    publish_to_s3(s3, "4", base=20.0)
    answer = app.lambda_handler(ride, LambdaContext())
    assert (answer["version"], answer["prediction"]["ride_duration"]) == ("4", 23.0)


def test_pinned_version(aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    s3, _ = aws
    publish_to_s3(s3, "3")
    publish_to_s3(s3, "4")
    monkeypatch.setenv("MODEL_VERSION_PIN", "3")
    monkeypatch.setenv("POINTER_TTL_SECONDS", "0")
    app = load_app(RIDE_APP)
    assert (
        app.lambda_handler(json.loads((EVENTS / "direct_ride.json").read_text()), LambdaContext())["version"]
        == "3"
    )


def test_init_fails_clearly_without_a_model(aws: tuple[Any, Any]) -> None:
    with pytest.raises(ModelLoadError, match=r"cannot read model pointer s3 key 'serving/live\.json'"):
        load_app()


def test_capture_is_gzip_json(aws: tuple[Any, Any]) -> None:
    s3, _ = aws
    publish_to_s3(s3, "3")
    load_app(RIDE_APP).lambda_handler(json.loads((EVENTS / "direct_ride.json").read_text()), LambdaContext())
    body = s3.get_object(Bucket="capture", Key=keys(s3, "capture")[0])["Body"].read()
    assert json.loads(gzip.decompress(body))["schema"] == 2
