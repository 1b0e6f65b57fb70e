"""Fixtures of the end-to-end tests against the local stack (make localstack-up; see infra/README.md).

Every test here is marked `localstack`. Without a reachable LocalStack they are skipped, unless
E2E_REQUIRED=1 (as in `make localstack-test`), where that is an error. The stack is deployed once per
session with infra/deploy_local.sh if it is not there yet. The tests go through the harness
(infra/harness/); all waiting goes through its `poll` (deadline, no bare sleeps in tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.aws import ENDPOINT, client
from infra.harness.scenario import healthy
from infra.harness.stack import Stack
from infra.harness.streams import put_payloads

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.localstack)
    # the closed loop's test moves the live model and the drift alarm: it runs after the others
    items.sort(key=lambda item: item.fspath.basename == "test_loop.py")


@pytest.fixture(scope="session")
def localstack() -> str:
    if not healthy():
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(f"LocalStack not reachable on {ENDPOINT} (make localstack-up)")
        pytest.skip(f"LocalStack not reachable on {ENDPOINT} (make localstack-up)")
    return ENDPOINT


@pytest.fixture(scope="session")
def stack(localstack: str) -> Stack:
    """The deployed stack (deploys it first if needed)."""
    try:
        return Stack.deployed()
    except Exception:
        subprocess.run([str(ROOT / "infra/deploy_local.sh")], cwd=ROOT, check=True)
        return Stack.deployed()


@pytest.fixture(scope="session")
def aws(localstack: str) -> Callable[[str], Any]:
    """Client factory: aws("s3"), aws("kinesis"), ... (endpoint from infra/aws.py), one client each."""
    cache: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in cache:
            cache[service] = client(service)
        return cache[service]

    return get


def put_rides(stack: Stack, rides: list[dict[str, Any]]) -> None:
    """Put ride payloads (architecture.md, "Input ride") on the rides stream, partition key = ride_id;
    one put per batch: a record PutRecords refuses fails the test."""
    put_payloads(stack["RidesStreamName"], rides, attempts=1)


@pytest.fixture
def alarm_inbox(aws: Callable[[str], Any], stack: Stack) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """An SQS queue subscribed to the alarm topic; yields a function returning the messages so far."""
    sqs, sns = aws("sqs"), aws("sns")
    url = sqs.create_queue(QueueName=f"e2e-alarms-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sub = sns.subscribe(
        TopicArn=stack["AlarmTopicArn"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "false"},
    )["SubscriptionArn"]
    received: list[dict[str, Any]] = []

    def messages() -> list[dict[str, Any]]:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            body = json.loads(m["Body"])
            received.append(json.loads(body["Message"]) if body.get("Message", "").startswith("{") else body)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return received

    yield messages
    sns.unsubscribe(SubscriptionArn=sub)
    sqs.delete_queue(QueueUrl=url)
