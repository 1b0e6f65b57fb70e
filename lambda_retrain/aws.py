"""boto3 adapters of the loop's ports: the Store (S3), the Alarms (CloudWatch), the Notifier (SNS), the
MLflow secret."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from lambda_retrain.ports import Tagged
from training.publish import s3_conditional_put

MISSING_CODES = ("NoSuchKey", "404")


class S3Store:
    def __init__(self, bucket: str, client: Any = None) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            # labelled.py fetches with 16 threads: as many pooled connections (default 10)
            client = boto3.client("s3", config=Config(max_pool_connections=32))
        self.bucket, self._client = bucket, client

    def get(self, key: str) -> bytes | None:
        tagged = self.get_tagged(key)
        return None if tagged is None else tagged.body

    def get_tagged(self, key: str) -> Tagged | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_CODES:
                return None
            raise
        return Tagged(response["Body"].read(), str(response["ETag"]))

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def put_if_absent(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        """S3 conditional write (If-None-Match: *): exactly one concurrent writer wins."""
        return s3_conditional_put(self._client, self.bucket, key, body, content_type, IfNoneMatch="*")

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        """S3 conditional write (If-Match: <etag>): replaces the object only as it was read."""
        return s3_conditional_put(self._client, self.bucket, key, body, "application/json", IfMatch=etag)

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys


class CloudWatchAlarms:
    def __init__(self, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("cloudwatch")
        self._client = client

    def states(self, names: tuple[str, ...]) -> dict[str, str]:
        if not names:
            return {}
        found: dict[str, str] = {}
        for page in self._client.get_paginator("describe_alarms").paginate(
            AlarmNames=list(names), AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        ):
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                found[str(alarm["AlarmName"])] = str(alarm["StateValue"])
        return found


def secret_json(secret_arn: str, client: Any = None) -> dict[str, str]:
    """A Secrets Manager secret holding a JSON object (the MLflow credentials)."""
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    value = json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])
    if not isinstance(value, dict):
        raise ValueError(f"secret {secret_arn} is not a JSON object")
    return {str(k): str(v) for k, v in value.items()}


class SnsNotifier:
    def __init__(self, topic_arn: str, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("sns")
        self.topic_arn, self._client = topic_arn, client

    def publish(self, subject: str, message: str) -> None:
        self._client.publish(TopicArn=self.topic_arn, Subject=subject, Message=message)
