"""boto3 implementations of the ports (one S3 client, created once at cold start)."""

from __future__ import annotations

from typing import Any


class S3Bucket:
    """One bucket: listed, read (None when a listed key is gone) and written."""

    def __init__(self, s3: Any, bucket: str, content_type: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._content_type = content_type

    def list_keys(self, prefix: str) -> list[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self._bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def get(self, key: str) -> bytes | None:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return body

    def put(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=self._content_type)
