"""boto3 implementations of the ports (one client per service, created once at cold start)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lambda_predict.ports import PutEntry
from trip_core.bundle import BundleError
from trip_core.contracts import MAX_BUNDLE_BYTES


class S3ModelSource:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def read(self, key: str) -> bytes:
        """The object's bytes; one larger than any bundle may be is refused before its body is read."""
        response = self._s3.get_object(Bucket=self._bucket, Key=key)
        size = int(response.get("ContentLength", 0))
        if size > MAX_BUNDLE_BYTES:
            response["Body"].close()
            raise BundleError(
                f"s3 object {key!r} is {size} bytes, over MAX_BUNDLE_BYTES ({MAX_BUNDLE_BYTES})"
            )
        return bytes(response["Body"].read())


class S3BlobStore:
    def __init__(self, s3: Any, bucket: str, content_type: str, content_encoding: str | None = None) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._extra: dict[str, str] = {"ContentType": content_type}
        if content_encoding:
            self._extra["ContentEncoding"] = content_encoding

    def put(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, **self._extra)


class KinesisPredictionSink:
    def __init__(self, kinesis: Any, stream_name: str) -> None:
        self._kinesis = kinesis
        self._stream = stream_name

    def put_records(self, entries: Sequence[PutEntry]) -> list[str | None]:
        response = self._kinesis.put_records(
            StreamName=self._stream,
            Records=[{"Data": e.data, "PartitionKey": e.partition_key} for e in entries],
        )
        return [item.get("ErrorCode") for item in response["Records"]]


def read_secret(secrets: Any, secret_id: str) -> bytes:
    """A Secrets Manager secret's string, as bytes (read once, at cold start)."""
    return str(secrets.get_secret_value(SecretId=secret_id)["SecretString"]).encode("utf-8")
