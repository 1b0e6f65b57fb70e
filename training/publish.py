"""The S3 side of a model version: bundle, reference profile and pointers at the architecture's keys."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from trip_core.contracts import LIVE_POINTER_KEY, version_pointer_key
from trip_core.pointer import ModelPointer

log = logging.getLogger(__name__)


class ObjectStore(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> None: ...


class S3ObjectStore:
    def __init__(self, bucket: str, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.bucket, self._client = bucket, client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        log.info("wrote s3://%s/%s (%d bytes)", self.bucket, key, len(body))


def publish_version(store: ObjectStore, pointer: ModelPointer, bundle: bytes, profile: bytes) -> None:
    """Every registered version: its bundle, profile and `serving/versions/<version>.json` (pin, rollback)."""
    store.put(pointer.bundle_key, bundle, "application/octet-stream")
    store.put(pointer.profile_key, profile, "application/json")
    store.put(version_pointer_key(pointer.version), pointer.to_json().encode(), "application/json")


def publish_live(store: ObjectStore, pointer: ModelPointer) -> None:
    """Promotion only: the one key the prediction Lambda polls."""
    store.put(LIVE_POINTER_KEY, pointer.to_json().encode(), "application/json")
