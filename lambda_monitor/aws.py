"""boto3 adapters of the ports (S3, CloudWatch). Keys and formats: docs/architecture.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from lambda_monitor.ports import MetricDatum
from lambda_monitor.window import Window
from trip_core import jsontext
from trip_core.batching import limited_batches
from trip_core.capture import decode_rejected
from trip_core.contracts import (
    LATE_ALLOWANCE,
    MONITOR_STATE_KEY,
    REJECTED_PREFIX,
    REPORTS_PREFIX,
    hour_prefixes,
    parse_utc,
    utc_iso,
    version_pointer_key,
)
from trip_core.event_window import READ_THREADS
from trip_core.observability import logger
from trip_core.pointer import ModelPointer
from trip_core.profile import ReferenceProfile, read_profile

MAX_METRICS_PER_CALL = 1000
MAX_BYTES_PER_CALL = 1_000_000
BYTES_BUDGET = 900_000  # margin under the 1 MB request limit for the envelope


def _keys(s3: Any, bucket: str, prefix: str, start_after: str | None = None) -> list[str]:
    paginator = s3.get_paginator("list_objects_v2")
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    return [item["Key"] for page in paginator.paginate(**kwargs) for item in page.get("Contents", [])]


def _skipped(problems: list[str] | None, problem: str) -> None:
    logger.warning("monitor input skipped", extra={"problem": problem})
    if problems is not None:
        problems.append(problem)


def _get(s3: Any, bucket: str, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


class S3Blobs:
    """A bucket as trip_core.event_window.BlobSource."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def list_keys(self, prefix: str) -> list[str]:
        return _keys(self.s3, self.bucket, prefix)

    def get(self, key: str) -> bytes | None:
        try:
            return _get(self.s3, self.bucket, key)
        except self.s3.exceptions.NoSuchKey:  # deleted between listing and reading
            return None


class S3Rejected:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def count(self, window: Window, problems: list[str] | None = None) -> int:
        # keyed by the arrival hour of a batch's first rejected ride, counted by each ride's arrival: the
        # partitions up to the allowance after the end, as for captures and actuals. A record rejected
        # again by a retry of a batch that starts elsewhere is in two objects: counted once.
        prefixes = hour_prefixes(REJECTED_PREFIX, window.start, window.end + LATE_ALLOWANCE)
        keys = [k for prefix in prefixes for k in _keys(self.s3, self.bucket, prefix)]
        with ThreadPoolExecutor(READ_THREADS) as pool:
            objects = list(pool.map(lambda key: _get(self.s3, self.bucket, key), keys))
        seen: set[tuple[str, str]] = set()
        for key, data in zip(keys, objects, strict=True):
            try:
                rides = decode_rejected(data)
                seen.update(
                    (r.shard_id, r.sequence_number)
                    for r in rides
                    if window.contains(parse_utc(r.arrival_time))
                )
            except ValueError as error:  # RecordFormatError, or a bad arrival_time
                _skipped(problems, f"rejected object {key}: {error}")
        return len(seen)


class S3Profiles:
    """Pointer `serving/versions/<version>.json` -> its profile_key, both in the models bucket; cached."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket
        self._profiles: dict[str, ReferenceProfile] = {}

    def pointer(self, version: str) -> ModelPointer:
        try:
            return ModelPointer.from_json(_get(self.s3, self.bucket, version_pointer_key(version)))
        except self.s3.exceptions.NoSuchKey as error:
            raise LookupError(f"no pointer {version_pointer_key(version)}") from error

    def profile(self, pointer: ModelPointer) -> ReferenceProfile:
        if pointer.profile_key not in self._profiles:
            try:
                data = _get(self.s3, self.bucket, pointer.profile_key)
            except self.s3.exceptions.NoSuchKey as error:
                raise LookupError(f"no reference profile {pointer.profile_key}") from error
            self._profiles[pointer.profile_key] = read_profile(data)
        return self._profiles[pointer.profile_key]


def _datum_json(datum: MetricDatum) -> dict[str, Any]:
    item: dict[str, Any] = {"MetricName": datum.name, "Value": float(datum.value), "Unit": datum.unit}
    if datum.dimensions:
        item["Dimensions"] = [{"Name": name, "Value": value} for name, value in datum.dimensions]
    if datum.timestamp is not None:
        item["Timestamp"] = datum.timestamp
    return item


def metric_batches(data: Sequence[MetricDatum]) -> list[list[dict[str, Any]]]:
    """PutMetricData MetricData lists within the per-call limits (1000 items, 1 MB request)."""

    def size_of(item: dict[str, Any]) -> int:
        return len(json.dumps(item, default=str)) * 2  # query-protocol encoding is more verbose

    return limited_batches([_datum_json(d) for d in data], size_of, MAX_METRICS_PER_CALL, BYTES_BUDGET)


class CloudWatchMetrics:
    def __init__(self, cloudwatch: Any, namespace: str) -> None:
        self.cloudwatch, self.namespace = cloudwatch, namespace

    def put(self, data: Sequence[MetricDatum]) -> None:
        for batch in metric_batches(data):
            self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=batch)


class S3Reports:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def reports_since(self, since: datetime) -> list[dict[str, Any]]:
        keys = _keys(self.s3, self.bucket, REPORTS_PREFIX, start_after=f"{REPORTS_PREFIX}{utc_iso(since)}")
        keys = [key for key in keys if key.endswith("/drift_report.json")]
        reports = []
        with ThreadPoolExecutor(READ_THREADS) as pool:
            bodies = pool.map(lambda key: _get(self.s3, self.bucket, key), keys)
            for key, data in zip(keys, bodies, strict=True):
                try:
                    report = jsontext.loads(data)
                except ValueError as error:  # an unreadable old report only loses a point of the history
                    _skipped(None, f"report {key}: {error}")
                    continue
                if isinstance(report, dict):
                    reports.append(report)
        return reports


class S3State:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def read(self) -> bytes | None:
        try:
            return _get(self.s3, self.bucket, MONITOR_STATE_KEY)
        except self.s3.exceptions.NoSuchKey:
            return None

    def write(self, body: bytes) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=MONITOR_STATE_KEY, Body=body, ContentType="application/json"
        )

    def set_aside(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/octet-stream")


def aws_ports(config: Any, s3: Any = None, cloudwatch: Any = None) -> Any:
    """All ports over real (or moto) clients."""
    import boto3

    from lambda_monitor.ports import Ports

    s3 = s3 or boto3.client("s3")
    cloudwatch = cloudwatch or boto3.client("cloudwatch")
    return Ports(
        capture=S3Blobs(s3, config.capture_bucket),
        rejected=S3Rejected(s3, config.rejected_bucket),
        profiles=S3Profiles(s3, config.models_bucket),
        metrics=CloudWatchMetrics(cloudwatch, config.metrics_namespace),
        reports=S3Reports(s3, config.capture_bucket),
        state=S3State(s3, config.capture_bucket),
    )
