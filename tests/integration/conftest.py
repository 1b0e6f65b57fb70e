"""Shared integration fixtures: MLflow on SQLite with artifacts on moto's S3; moto for the monitor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.doubles.moto_s3 import moto_s3

BUCKET = "models-test"


@pytest.fixture
def mlflow_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for key, value in {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_LOCATION": f"s3://{BUCKET}/mlflow",
        "MLFLOW_EXPERIMENT_NAME": "it-trip-duration",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    with moto_s3(monkeypatch, BUCKET) as client:
        yield client


@pytest.fixture
def monitor_aws() -> Iterator[tuple[Any, Any]]:
    """moto S3 with the monitor's three buckets (models, capture, rejected) and CloudWatch."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for bucket in ("models", "capture", "rejected"):
            s3.create_bucket(Bucket=bucket)
        yield s3, cloudwatch
