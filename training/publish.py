"""The S3 side of a model version: bundle, reference profile and pointers at the architecture's keys.

A version's objects are written once: publishing a version whose objects exist fails loudly
(`VersionExists`) instead of replacing the bytes a live pointer's checksum was taken from."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from trip_core.contracts import LIVE_POINTER_KEY, version_pointer_key
from trip_core.pointer import ModelPointer

log = logging.getLogger(__name__)
# S3's answers to a failed precondition (If-None-Match / If-Match) or a concurrent conditional write
PRECONDITION_CODES = ("PreconditionFailed", "ConditionalRequestConflict")
PRECONDITION_STATUSES = (409, 412)


class VersionExists(RuntimeError):
    """A version's object is already published: two registries numbered the same version."""


class ObjectStore(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> None: ...
    def put_if_absent(self, key: str, body: bytes, content_type: str) -> str | None: ...  # None: exists


def s3_conditional_put(
    client: Any, bucket: str, key: str, body: bytes, content_type: str, **condition: str
) -> str | None:
    """put_object with a condition (IfNoneMatch="*" or IfMatch=<etag>): the new ETag, or None when the
    condition failed (the object exists, or changed since the ETag was read)."""
    from botocore.exceptions import ClientError

    try:
        response = client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **condition)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in PRECONDITION_CODES or status in PRECONDITION_STATUSES:
            return None
        raise
    return str(response["ETag"])


class S3ObjectStore:
    def __init__(self, bucket: str, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.bucket, self._client = bucket, client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        log.info("wrote s3://%s/%s (%d bytes)", self.bucket, key, len(body))

    def put_if_absent(self, key: str, body: bytes, content_type: str) -> str | None:
        etag = s3_conditional_put(self._client, self.bucket, key, body, content_type, IfNoneMatch="*")
        if etag is not None:
            log.info("wrote s3://%s/%s (%d bytes)", self.bucket, key, len(body))
        return etag


def publish_version(store: ObjectStore, pointer: ModelPointer, bundle: bytes, profile: bytes) -> None:
    """Every registered version: its bundle, profile and `serving/versions/<version>.json` (pin, rollback),
    each created only if absent."""
    for key, body, content_type in (
        (pointer.bundle_key, bundle, "application/octet-stream"),
        (pointer.profile_key, profile, "application/json"),
        (version_pointer_key(pointer.version), pointer.to_json().encode(), "application/json"),
    ):
        if store.put_if_absent(key, body, content_type) is None:
            raise VersionExists(
                f"{key} exists: version {pointer.version} of {pointer.model_name} is already published"
                " (refusing to overwrite it)"
            )


def publish_live(store: ObjectStore, pointer: ModelPointer) -> None:
    """Promotion only: the one key the prediction Lambda polls."""
    store.put(LIVE_POINTER_KEY, pointer.to_json().encode(), "application/json")
