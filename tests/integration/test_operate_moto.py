"""The on-call commands (infra/operate.py) on moto: status reads the plan, the rollout, the audit, the
alarms; actions are direct invokes of the retrain function, refused here when they lack what they need."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.operate import Stack, ask_the_loop, request_of, status
from lambda_retrain.audit import DecisionKind, write_audit, write_state
from lambda_retrain.aws import S3Store
from tests.doubles.predict import publish, tiny_bundle
from trip_core.contracts import LIVE_POINTER_KEY
from trip_core.plan import TrafficPlan, live_document

REGION = "us-east-1"


class FakeCloudFormation:
    def __init__(self, alarms: list[str]) -> None:
        self.alarms = alarms

    def list_stack_resources(self, StackName: str) -> dict[str, Any]:
        return {
            "StackResourceSummaries": [
                {"ResourceType": "AWS::CloudWatch::Alarm", "PhysicalResourceId": a} for a in self.alarms
            ]
        }


class FakeLambda:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.requests.append(json.loads(Payload))
        answer = {"decisions": [{"kind": "rollout", "verdict": "canary at 10% of the rides: approved"}]}
        return {"Payload": io.BytesIO(json.dumps(answer).encode())}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3, cloudwatch = (
            boto3.client("s3", region_name=REGION),
            boto3.client("cloudwatch", region_name=REGION),
        )
        s3.create_bucket(Bucket="models")
        for name in ("td-drift-share", "td-canary"):
            cloudwatch.put_metric_alarm(
                AlarmName=name, MetricName="X", Namespace="TripDuration", Statistic="Sum", Period=60,
                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
            )  # fmt: skip
        lam = FakeLambda()
        clients = {
            "s3": s3,
            "cloudwatch": cloudwatch,
            "cloudformation": FakeCloudFormation(["td-drift-share", "td-canary"]),
            "lambda": lam,
        }
        yield Stack(
            {"ModelsBucketName": "models", "RetrainFunctionName": "retrain"},
            lambda service, config=None: clients[service],
            "td",
        )


def test_status_shows_the_arms_the_rollout_the_decisions_and_the_alarms(stack: Stack) -> None:
    models = S3Store("models", stack.client("s3"))
    live = publish(None, "1", tiny_bundle())
    models.put(LIVE_POINTER_KEY, live_document(live, TrafficPlan(canary="2", canary_share=0.1)))
    started = "2026-12-03T10:00:00Z"
    rollout = {"version": "2", "live_version": "1", "stage": "canary", "stage_started_at": started}
    write_state(models, {"rollout": rollout})
    write_audit(
        models, datetime(2026, 12, 3, 10, tzinfo=UTC), DecisionKind.ROLLOUT, {"verdict": "canary at 10%"}
    )
    shown = status(stack)
    assert "live    1" in shown and "canary  2" in shown and "canary share: 10%" in shown
    assert f"rollout of 2 beside 1: canary since {started}" in shown
    assert "canary at 10%" in shown
    stack.client("cloudwatch").set_alarm_state(AlarmName="td-canary", StateValue="ALARM", StateReason="test")
    assert "ALARM              td-canary" in status(stack) and "OK                 td-drift-share" in shown


def test_actions_are_direct_invokes_that_name_what_they_need(stack: Stack) -> None:
    def args(command: str, version: str | None = None, reason: str | None = None) -> argparse.Namespace:
        return argparse.Namespace(command=command, version=version, reason=reason)

    with pytest.raises(SystemExit, match="make approve needs VERSION"):
        request_of(args("approve"))
    with pytest.raises(SystemExit, match='make retrain needs REASON="why"'):
        request_of(args("retrain"))
    request = request_of(args("approve", "2", "looked at the evidence"))
    assert request == {
        "action": "approve",
        "source": "direct",
        "reason": "looked at the evidence",
        "version": "2",
    }
    answer = ask_the_loop(stack, request)
    assert answer["decisions"][0]["kind"] == "rollout"
    assert stack.client("lambda").requests == [request]
