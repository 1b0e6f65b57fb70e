"""The deployed stack as the scenarios see it: its outputs, the live model, invokes, the monitor, actuals,
the rejected and captured rides, alarms, the loop's audit. S3 keys and times come from trip_core.contracts."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.config import Config

from infra.aws import STACK_NAME, client, stack_outputs
from infra.harness.poll import poll
from infra.harness.streams import put_actuals
from lambda_retrain.audit import read_audit
from lambda_retrain.aws import S3Store
from trip_core.bundle import ServingBundle, load_bundle
from trip_core.capture import (
    Actual,
    CaptureBatch,
    decode_actuals,
    decode_capture,
    decode_rejected,
    encode_actuals,
)
from trip_core.contracts import (
    ACTUALS_PREFIX,
    CAPTURE_PREFIX,
    LIVE_POINTER_KEY,
    REJECTED_ACTUALS_PREFIX,
    REJECTED_PREFIX,
    actuals_key,
    day_prefix,
    floor_hour,
    parse_utc,
    utc_iso,
    version_pointer_key,
)
from trip_core.pointer import ModelPointer

# a retrain answers after seconds to minutes: a long read timeout, and never a retried (repeated) invoke
LONG_INVOKE = Config(read_timeout=900, retries={"max_attempts": 0})
RECENT = timedelta(minutes=5)  # objects older than this before `since` are not opened
CAPTURE_DAYS_BACK = timedelta(days=7)


class InvokeError(RuntimeError):
    """A function answered with a FunctionError."""


def now_s() -> datetime:
    """Now in UTC, whole seconds (window bounds and `since` marks)."""
    return datetime.now(UTC).replace(microsecond=0)


def _days(since: datetime) -> list[date]:
    """The UTC days from a week before `since` to today: captures sit in their rides' pickup days, and
    the scenarios' rides were picked up up to a few days before they are sent (rides.real_rides)."""
    first = (since - CAPTURE_DAYS_BACK).astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((datetime.now(UTC).date() - first).days + 1)]


def _named_prediction(raw_base64: str) -> object:
    """The prediction id a refused actuals record names, if it is a JSON object."""
    try:
        line = json.loads(base64.b64decode(raw_base64))
    except ValueError:
        return None
    return line.get("prediction_id") if isinstance(line, dict) else None


@dataclass
class Stack:
    outputs: dict[str, str]
    models: S3Store = field(init=False)

    def __post_init__(self) -> None:
        self.models = S3Store(self.outputs["ModelsBucketName"], client("s3"))
        self.lam = client("lambda", config=LONG_INVOKE)

    @classmethod
    def deployed(cls, name: str = STACK_NAME) -> Stack:
        return cls(stack_outputs(name))

    def __getitem__(self, output: str) -> str:
        return self.outputs[output]

    # ------------------------------------------------------------------ models
    def live(self) -> ModelPointer:
        body = self.models.get(LIVE_POINTER_KEY)
        assert body is not None, f"no live model pointer in s3://{self['ModelsBucketName']}"
        return ModelPointer.from_json(body)

    def has_live(self) -> bool:
        return self.models.get(LIVE_POINTER_KEY) is not None

    def pointer(self, version: str) -> ModelPointer:
        body = self.models.get(version_pointer_key(version))
        assert body is not None, f"no pointer of version {version}"
        return ModelPointer.from_json(body)

    def bundle(self, pointer: ModelPointer) -> ServingBundle:
        data = self.models.get(pointer.bundle_key)
        assert data is not None, f"no bundle {pointer.bundle_key}"
        return load_bundle(data, expected_sha256=pointer.bundle_sha256)

    def audit_since(self, since: datetime) -> list[dict[str, Any]]:
        return [r for r in read_audit(self.models) if parse_utc(r["time"]) >= since]

    # ------------------------------------------------------------------ functions
    def invoke_raw(self, output: str, payload: Any) -> tuple[Any, str | None]:
        """(answer, FunctionError or None) of the function named by stack output `output`."""
        response = self.lam.invoke(FunctionName=self[output], Payload=json.dumps(payload).encode())
        return json.loads(response["Payload"].read() or b"null"), response.get("FunctionError")

    def invoke(self, output: str, payload: Any) -> Any:
        answer, error = self.invoke_raw(output, payload)
        if error:
            raise InvokeError(f"{self[output]} failed: {json.dumps(answer)[:2000]}")
        return answer

    def monitor(self, start: datetime, end: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """Backfill the monitor over the pickups of [start, end) (rides.pickup_window of the rides a
        scenario sent); (its event, its answer)."""
        event = {"window_start": utc_iso(start), "window_end": utc_iso(end)}
        return event, self.invoke("MonitorFunctionName", event)

    def report(self, key: str) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.get("CaptureBucketName", key))
        return report

    def get(self, bucket_output: str, key: str) -> bytes:
        body: bytes = client("s3").get_object(Bucket=self[bucket_output], Key=key)["Body"].read()
        return body

    # ------------------------------------------------------------------ data in and out
    def send_actuals(self, actuals: list[Actual], timeout: float = 120.0) -> int:
        """The actual durations through the actuals stream, as a client sends them; waits until the
        actuals function has judged them all (accepted under actuals/, or refused in the rejected
        bucket); -> how many it accepted."""
        since, wanted = now_s(), {a.prediction_id for a in actuals}
        put_actuals(self["ActualsStreamName"], actuals)

        def judged() -> tuple[int] | None:  # a tuple: poll waits for a truthy answer, and 0 may be one
            accepted = [
                line.prediction_id
                for body in self._recent_objects("CaptureBucketName", ACTUALS_PREFIX, since)
                for line in decode_actuals(body)
                if isinstance(line, Actual) and line.prediction_id in wanted
            ]
            refused = [
                r
                for body in self._recent_objects("RejectedBucketName", REJECTED_ACTUALS_PREFIX, since)
                for r in decode_rejected(body)
                if _named_prediction(r.raw_base64) in wanted
            ]
            return (len(accepted),) if len(accepted) + len(refused) >= len(actuals) else None

        (accepted,) = poll(judged, timeout=timeout, interval=1.0, what=f"{len(actuals)} actuals judged")
        return accepted

    def backdate_actuals(
        self, actuals: list[Actual], name: str, reported: Sequence[datetime] | None = None
    ) -> list[str]:
        """Actual durations of rides picked up in the past (a scenario's days compressed into minutes),
        written as the actuals function writes them, one object per hour they are reported in
        (`reported`, one time per actual; default now), because through the stream they would land in
        the hour they arrive in, not the hour a client reports them; the keys. Live traffic's actuals go
        through `send_actuals`."""
        at = [datetime.now(UTC)] * len(actuals) if reported is None else reported
        by_hour: dict[datetime, list[Actual]] = {}
        for actual, moment in zip(actuals, at, strict=True):
            by_hour.setdefault(floor_hour(moment), []).append(actual)
        keys = []
        for hour, group in sorted(by_hour.items()):
            key = actuals_key(hour, name)
            client("s3").put_object(Bucket=self["CaptureBucketName"], Key=key, Body=encode_actuals(group))
            keys.append(key)
        return keys

    def _recent_objects(self, bucket_output: str, prefix: str, since: datetime) -> list[bytes]:
        s3, bucket, found = client("s3"), self[bucket_output], []
        for day in _days(since):
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=day_prefix(prefix, day)
            ):
                for obj in page.get("Contents", []):
                    if obj["LastModified"] >= since - RECENT:
                        found.append(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
        return found

    def rejections_since(self, since: datetime) -> list[dict[str, Any]]:
        """Rejections (architecture.md, rejected-rides object) that arrived at or after `since` (-2 s)."""
        return [
            r.to_json()
            for body in self._recent_objects("RejectedBucketName", REJECTED_PREFIX, since)
            for r in decode_rejected(body)
            if parse_utc(r.arrival_time) >= since - timedelta(seconds=2)
        ]

    def captures_since(self, since: datetime) -> list[CaptureBatch]:
        objects = self._recent_objects("CaptureBucketName", CAPTURE_PREFIX, since)
        batches = [decode_capture(body) for body in objects]
        return [b for b in batches if parse_utc(b.captured_at) >= since - timedelta(seconds=2)]

    def captured_since(self, since: datetime) -> dict[Any, float]:
        """ride_id -> captured prediction, over capture objects captured at or after `since` (-2 s)."""
        found: dict[Any, float] = {}
        for batch in self.captures_since(since):
            found.update(zip(batch.ride_id, batch.prediction, strict=True))
        return found

    def capture_counts_since(self, since: datetime) -> Counter[Any]:
        """ride_id -> in how many captured rows it appears, over the same objects as `captured_since`."""
        return Counter(i for batch in self.captures_since(since) for i in batch.ride_id)

    def alarm(self, output: str) -> dict[str, Any]:
        """The alarm named by stack output `output`."""
        found = client("cloudwatch").describe_alarms(AlarmNames=[self[output]])["MetricAlarms"]
        alarm: dict[str, Any] = found[0]
        return alarm
