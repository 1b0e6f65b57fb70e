"""boto3 adapters of the replay's ports, and the wiring to a deployed stack: LocalStack's (infra/aws.py)
or, with a region, AWS with the default credential chain. There the operator needs: cloudformation:
DescribeStacks; sqs:ReceiveMessage, DeleteMessage, ChangeMessageVisibility on the failures queue;
kinesis:GetShardIterator, GetRecords on the stream; lambda:InvokeFunction on the function (and its
`release` alias, which the replay invokes where the stack has it); s3:GetObject
on the rejected bucket."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.aws import client as localstack_client
from infra.aws import stack_outputs
from infra.replay_failures.ports import QueueMessage, RangeUnreadable, RecordsPage, StreamRecord
from infra.replay_failures.service import Ports, Target
from trip_core.capture import decode_rejected

# Longer than the re-drive of one message (a read and one invocation of at most the function's timeout)
VISIBILITY_SECONDS = 300
# What Kinesis answers for a range it no longer has (or a stream, shard or iterator that is gone)
_GONE = {"ResourceNotFoundException", "InvalidArgumentException", "TrimmedDataAccessException"}
_LAMBDA = Config(read_timeout=900, retries={"max_attempts": 2, "mode": "standard"})  # a batch: <= 900 s
_KINESIS = Config(retries={"max_attempts": 10, "mode": "standard"})  # GetRecords: 5 calls/s per shard


class SqsFailureQueue:
    def __init__(self, sqs: Any, queue_url: str, wait_seconds: int = 2) -> None:
        self._sqs, self._url, self._wait = sqs, queue_url, wait_seconds

    def receive(self) -> Sequence[QueueMessage]:
        answer = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self._wait,  # long polling asks every SQS server: none back means none visible
            VisibilityTimeout=VISIBILITY_SECONDS,
        )
        return [
            QueueMessage(m["MessageId"], m["ReceiptHandle"], m["Body"]) for m in answer.get("Messages", [])
        ]

    def delete(self, receipt: str) -> None:
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=receipt)

    def release(self, receipt: str) -> None:
        # a stale receipt: the message is visible again when its timeout ends anyway
        with contextlib.suppress(ClientError):
            self._sqs.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=receipt, VisibilityTimeout=0
            )


class KinesisShardStream:
    def __init__(self, kinesis: Any) -> None:
        self._kinesis = kinesis

    def iterator_at(self, stream_arn: str, shard_id: str, sequence_number: str) -> str:
        answer = self._call(
            self._kinesis.get_shard_iterator,
            StreamARN=stream_arn,
            ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=sequence_number,
        )
        return str(answer["ShardIterator"])

    def page(self, stream_arn: str, iterator: str) -> RecordsPage:
        answer = self._call(self._kinesis.get_records, StreamARN=stream_arn, ShardIterator=iterator)
        records = [
            StreamRecord(
                str(r["SequenceNumber"]),
                str(r["PartitionKey"]),
                bytes(r["Data"]),
                round(r["ApproximateArrivalTimestamp"].timestamp(), 3),
            )
            for r in answer["Records"]
        ]
        return RecordsPage(records, answer.get("NextShardIterator"), int(answer.get("MillisBehindLatest", 0)))

    @staticmethod
    def _call(method: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        try:
            return method(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in _GONE:
                raise RangeUnreadable(f"{error.get('Code')}: {error.get('Message', '')}"[:300]) from exc
            raise


class LambdaStreamFunction:
    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self._lambda, self._name = lambda_client, function_name

    def invoke(self, event: dict[str, Any]) -> Any:
        answer = self._lambda.invoke(
            FunctionName=self._name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            raise RuntimeError(f"{self._name} failed ({answer['FunctionError']}): {payload[:300]!r}")
        return json.loads(payload) if payload else None


class S3RejectedStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3, self._bucket = s3, bucket

    def rejected(self, prefix: str) -> Sequence[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                try:
                    body = self._s3.get_object(Bucket=self._bucket, Key=item["Key"])["Body"].read()
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                        continue  # deleted between listing and reading
                    raise
                found += [(r.shard_id, r.sequence_number) for r in decode_rejected(body)]
        return found


def stack_ports(target: Target, stack: str, region: str | None = None) -> tuple[Ports, str]:
    """The ports on a deployed stack and the ARN of the target's stream (LocalStack without `region`)."""
    make = localstack_client if region is None else boto3.Session(region_name=region).client
    outputs = stack_outputs(stack, make("cloudformation"))
    ports = Ports(
        queue=SqsFailureQueue(make("sqs"), outputs[target.queue_output]),
        stream=KinesisShardStream(make("kinesis", config=_KINESIS)),
        function=LambdaStreamFunction(make("lambda", config=_LAMBDA), target.function(outputs)),
        rejected=S3RejectedStore(make("s3"), outputs["RejectedBucketName"]),
    )
    return ports, outputs[target.stream_arn_output]
