"""The local executor's EMF extraction (what CloudWatch Logs does on AWS): Powertools' own output of a
count and of an invocation's metrics becomes PutMetricData that CloudWatch (moto) accepts and sums."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from moto import mock_aws

from lambda_predict.model_provider import emit_model_read_failed

EMF = Path(__file__).resolve().parents[2] / "infra/localstack_local_executor/localstack_local_executor/emf.py"


def emf_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("local_executor_emf", EMF)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "trip-duration-predict")  # as template.yaml sets it


def powertools_lines(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    emit_model_read_failed("cannot read model pointer")
    metrics = Metrics(namespace="TripDuration", service="trip-duration-predict")
    metrics.clear_metrics()  # Powertools keeps one metric set per process: earlier tests' metrics are in it
    metrics.add_dimension(name="model_version", value="7")
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=40)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=2)
    metrics.flush_metrics()
    return 'START RequestId: 1\n[INFO] not a metric {"_aws": 1\n' + capsys.readouterr().out + "END\n"


def test_powertools_lines_become_metric_data(capsys: pytest.CaptureFixture[str]) -> None:
    [request] = emf_module().metric_requests(powertools_lines(capsys))
    assert request["Namespace"] == "TripDuration"
    by_name = {d["MetricName"]: d for d in request["MetricData"]}
    assert by_name["ModelReadFailed"]["Values"] == [1.0]
    assert by_name["ModelReadFailed"]["Dimensions"] == [{"Name": "service", "Value": "trip-duration-predict"}]
    assert by_name["Predictions"]["Values"] == [40.0, 2.0]
    assert {d["Name"]: d["Value"] for d in by_name["Predictions"]["Dimensions"]} == {
        "service": "trip-duration-predict",
        "model_version": "7",
    }
    assert abs(by_name["Predictions"]["Timestamp"] - datetime.now(UTC)) < timedelta(minutes=1)


def test_lines_that_are_not_emf_give_nothing() -> None:
    logs = "\n".join(
        ["plain", json.dumps({"level": "INFO", "message": "x"}), '{"_aws": "not an object"}', "{broken"]
    )
    assert emf_module().metric_requests(logs) == []


def test_cloudwatch_accepts_and_sums_them(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for request in emf_module().metric_requests(powertools_lines(capsys)):
            cloudwatch.put_metric_data(**request)
        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="TripDuration",
            MetricName="ModelReadFailed",
            Dimensions=[{"Name": "service", "Value": "trip-duration-predict"}],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=5),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
    assert sum(p["Sum"] for p in points) == 1.0
