"""`make train` and the loop on one stack (moto S3, MLflow on SQLite) draw versions from one sequence:
MLflow's numbers where the stack has MLflow, `loop-<time>` names where it has none. Either way no
version's objects are overwritten and the live pointer's checksum still matches its bundle; publishing
a version whose objects exist fails loudly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lambda_retrain.aws import S3Store, secret_json
from lambda_retrain.config import RetrainConfig
from lambda_retrain.ports import Ports, Tracker
from lambda_retrain.registry import LoopRegistry, RunLog, register
from tests.doubles.retrain import MemoryStore, MlflowClientTracker, StaticAlarms
from tests.integration.conftest import BUCKET
from training.data import load_month
from training.gate import GateConfig, gate_and_publish
from training.model import ModelParams
from training.pipeline import train_candidate
from training.publish import S3ObjectStore, VersionExists, publish_version
from training.train import frame_rows, gate_rides, main
from trip_core.bundle import load_bundle
from trip_core.contracts import LIVE_POINTER_KEY, VERSION_POINTERS_PREFIX
from trip_core.pointer import ModelPointer

DATA = Path(__file__).resolve().parents[2] / "data"
MODEL = "it-model"
CONFIG = RetrainConfig(models_bucket=BUCKET, capture_bucket="capture", model_name=MODEL)


def _subset(src: str, dst: Path, rows: int) -> str:
    pq.write_table(pq.read_table(DATA / src).slice(0, rows), dst / src)
    return str(dst / src)


def make_train(tmp_path: Path, train: str, valid: str) -> str:
    args = ["--train", train, "--valid", valid, "--out", str(tmp_path / "out"), "--models-bucket", BUCKET]
    return str(main([*args, "--model-name", MODEL, "--max-iter", "20"])["version"])


def loop_publishes(s3: Any, tracker: Tracker | None, train: str, valid: str, now: datetime) -> str:
    """What a loop retrain does with its candidate: register (registry.register), then gate and publish."""
    ports = Ports(S3Store(BUCKET, s3), MemoryStore(), StaticAlarms(), tracker)
    valid_frame = load_month(valid).frame
    train_rows, valid_rows = frame_rows(load_month(train).frame), frame_rows(valid_frame)
    trained = train_candidate(train_rows, valid_rows, ModelParams(max_iter=20), {"model_name": MODEL})
    registered = register(ports, CONFIG, now, trained, RunLog({}, {}, {"holdout_rmse": trained.rmse}))
    candidate = trained.candidate(MODEL, registered.version, registered.run_id)
    gate_and_publish(candidate, LoopRegistry(ports), ports.models, gate_rides(valid_frame), GateConfig())
    return registered.version


def published(s3: Any) -> dict[str, ModelPointer]:
    """Every version pointer, each checked against the bundle it names (a replaced bundle fails here)."""
    pointers = {}
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=VERSION_POINTERS_PREFIX)["Contents"]:
        pointer = ModelPointer.from_json(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
        body = s3.get_object(Bucket=BUCKET, Key=pointer.bundle_key)["Body"].read()
        load_bundle(body, expected_sha256=pointer.bundle_sha256)
        pointers[pointer.version] = pointer
    return pointers


@pytest.fixture
def months(tmp_path: Path) -> tuple[str, str]:
    return _subset("green_tripdata_2023-02.parquet", tmp_path, 3000), _subset(
        "green_tripdata_2023-03.parquet", tmp_path, 1500
    )


def test_with_mlflow_the_loop_and_make_train_share_mlflow_numbers(
    tmp_path: Path, mlflow_s3: Any, months: tuple[str, str]
) -> None:
    train, valid = months
    first = make_train(tmp_path, train, valid)
    looped = loop_publishes(
        mlflow_s3, MlflowClientTracker("it-trip-duration"), train, valid, datetime.now(UTC)
    )
    second = make_train(tmp_path, train, valid)
    assert [first, looped, second] == ["1", "2", "3"]
    assert set(published(mlflow_s3)) == {"1", "2", "3"}
    live = ModelPointer.from_json(mlflow_s3.get_object(Bucket=BUCKET, Key=LIVE_POINTER_KEY)["Body"].read())
    assert live.bundle_sha256 == published(mlflow_s3)[live.version].bundle_sha256


def test_without_mlflow_on_the_stack_loop_versions_cannot_be_mlflow_numbers(
    tmp_path: Path, mlflow_s3: Any, months: tuple[str, str]
) -> None:
    """The stack has no MlflowTrackingUri: the loop names its versions, `make train` (its own local
    MLflow) numbers them; both on the same bucket."""
    train, valid = months
    first = make_train(tmp_path, train, valid)
    looped = loop_publishes(mlflow_s3, None, train, valid, datetime(2024, 5, 6, 12, 30, tzinfo=UTC))
    second = make_train(tmp_path, train, valid)
    assert (first, looped, second) == ("1", "loop-20240506T123000Z", "2")
    assert set(published(mlflow_s3)) == {"1", "2", looped}


def test_publishing_an_existing_version_fails_loudly_and_keeps_its_bytes(
    mlflow_s3: Any, tmp_path: Path, months: tuple[str, str]
) -> None:
    first = make_train(tmp_path, *months)
    pointer = published(mlflow_s3)[first]
    before = mlflow_s3.get_object(Bucket=BUCKET, Key=pointer.bundle_key)["Body"].read()
    for adapter in (S3ObjectStore(BUCKET, mlflow_s3), S3Store(BUCKET, mlflow_s3)):  # make train's, the loop's
        with pytest.raises(VersionExists, match=f"version {first} of {MODEL} is already published"):
            publish_version(adapter, pointer, b"other bytes", b"{}")
    assert mlflow_s3.get_object(Bucket=BUCKET, Key=pointer.bundle_key)["Body"].read() == before


def test_the_mlflow_secret_is_read_as_a_json_object(mlflow_s3: Any) -> None:
    import boto3

    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="mlflow", SecretString='{"token": "t0k"}')["ARN"]
    assert secret_json(arn, client) == {"token": "t0k"}
