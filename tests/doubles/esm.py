"""Lambda's Kinesis event source mapping as template.yaml configures it, for one shard of a moto stream:
batches in sequence order; a partial batch response retried from its lowest failed record (the
records before it were handled); after MaximumRetryAttempts retries the batch left is given up: its
invocation record (the shape the Lambda developer guide documents and LocalStack writes, no payload)
goes to the OnFailure SQS queue and the mapping moves on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.doubles.kinesis import lambda_record

Function = Callable[[dict[str, Any]], dict[str, Any]]


class EventSourceMapping:
    def __init__(
        self,
        kinesis: Any,
        sqs: Any,
        stream: str,
        queue_url: str,
        function: Function,
        batch_size: int,
        retries: int,
    ) -> None:
        self._kinesis, self._sqs, self._queue_url, self._function = kinesis, sqs, queue_url, function
        self._batch_size, self._retries = batch_size, retries
        description = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
        self.stream_arn, self.shard_id = description["StreamARN"], description["Shards"][0]["ShardId"]
        self._iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=self.shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        self.given_up: list[dict[str, Any]] = []  # the invocation records sent to the queue

    def poll(self) -> bool:
        """One batch from the checkpoint; False when the shard has no new record."""
        page = self._kinesis.get_records(ShardIterator=self._iterator, Limit=self._batch_size)
        self._iterator = page["NextShardIterator"]
        events = [
            lambda_record(
                self.shard_id,
                int(r["SequenceNumber"]),
                None,
                r["Data"],
                round(r["ApproximateArrivalTimestamp"].timestamp(), 3),
            )
            for r in page["Records"]
        ]
        if events:
            self._deliver(events)
        return bool(events)

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        invocations = self._retries + 1
        for _ in range(invocations):
            answer = self._function({"Records": events})
            failed = [int(item["itemIdentifier"]) for item in answer["batchItemFailures"]]
            if not failed:
                return
            events = [e for e in events if int(e["kinesis"]["sequenceNumber"]) >= min(failed)]
        self._give_up(events, invocations)

    def _give_up(self, events: list[dict[str, Any]], invocations: int) -> None:
        first, last = events[0]["kinesis"], events[-1]["kinesis"]
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:predict",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invocations,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None},
            "version": "1.0",
            "timestamp": _iso(datetime.now(UTC).timestamp()),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": first["sequenceNumber"],
                "endSequenceNumber": last["sequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first["approximateArrivalTimestamp"]),
                "approximateArrivalOfLastRecord": _iso(last["approximateArrivalTimestamp"]),
                "batchSize": len(events),
                "streamArn": self.stream_arn,
            },
        }
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(record))
        self.given_up.append(record)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
