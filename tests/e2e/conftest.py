"""Fixtures of the end-to-end tests against the local stack (make localstack-up; see infra/README.md).

Every test here is marked `localstack`. Without a reachable LocalStack they are skipped, unless
E2E_REQUIRED=1 (as in `make localstack-test`), where that is an error. The stack is deployed once per
session with infra/deploy_local.sh if it is not there yet. All waiting goes through `poll` (deadline,
no bare sleeps in tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from infra.aws import ENDPOINT, STACK_NAME, client, stack_outputs

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.localstack)
    # the closed loop's test moves the live model and the drift alarm: it runs after the others
    items.sort(key=lambda item: item.fspath.basename == "test_loop.py")


def poll[T](
    fn: Callable[[], T | None], *, timeout: float, interval: float = 0.25, what: str = "condition"
) -> T:
    """Call fn until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def _localstack_healthy() -> bool:
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def localstack() -> str:
    if not _localstack_healthy():
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(f"LocalStack not reachable on {ENDPOINT} (make localstack-up)")
        pytest.skip(f"LocalStack not reachable on {ENDPOINT} (make localstack-up)")
    return ENDPOINT


@pytest.fixture(scope="session")
def stack(localstack: str) -> dict[str, str]:
    """Outputs of the deployed stack (deploys it first if needed)."""
    try:
        return stack_outputs(STACK_NAME)
    except Exception:
        subprocess.run([str(ROOT / "infra/deploy_local.sh")], cwd=ROOT, check=True)
        return stack_outputs(STACK_NAME)


@pytest.fixture(scope="session")
def aws(localstack: str) -> Callable[[str], Any]:
    """Client factory: aws("s3"), aws("kinesis"), ... (endpoint from infra/aws.py)."""
    cache: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in cache:
            cache[service] = client(service)
        return cache[service]

    return get


def put_rides(aws: Callable[[str], Any], stream: str, rides: list[dict[str, Any]]) -> None:
    """Put ride payloads (architecture.md, "Input ride") on the rides stream, partition key = ride_id."""
    kinesis = aws("kinesis")
    for i in range(0, len(rides), 500):
        chunk = rides[i : i + 500]
        records = [{"Data": json.dumps(r).encode(), "PartitionKey": str(r.get("ride_id", i))} for r in chunk]
        response = kinesis.put_records(StreamName=stream, Records=records)
        assert response["FailedRecordCount"] == 0, response


class StreamReader:
    """Reads every shard of a stream from the position it had when created (LATEST) onwards."""

    def __init__(self, kinesis: Any, stream: str) -> None:
        self.kinesis = kinesis
        shards = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]
        self.iterators = {
            s["ShardId"]: kinesis.get_shard_iterator(
                StreamName=stream, ShardId=s["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            for s in shards
        }
        self.records: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        for shard, it in self.iterators.items():
            response = self.kinesis.get_records(ShardIterator=it, Limit=1000)
            self.iterators[shard] = response["NextShardIterator"]
            self.records.extend(json.loads(r["Data"]) for r in response["Records"])
        return self.records

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        return poll(
            lambda: self.records if len(self.read()) >= count else None,
            timeout=timeout,
            what=f"{count} records (have {len(self.records)})",
        )


@pytest.fixture
def predictions_reader(aws: Callable[[str], Any], stack: dict[str, str]) -> StreamReader:
    """Create BEFORE putting rides: reads the predictions stream from now on."""
    return StreamReader(aws("kinesis"), stack["PredictionsStreamName"])


@pytest.fixture
def alarm_inbox(
    aws: Callable[[str], Any], stack: dict[str, str]
) -> Iterator[Callable[[], list[dict[str, Any]]]]:
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
