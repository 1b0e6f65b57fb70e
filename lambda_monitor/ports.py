"""What the monitor needs from the outside world; boto3 adapters in `aws`, in-memory fakes in `memory`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from lambda_monitor.window import Window
from trip_core.capture import CaptureBatch
from trip_core.pointer import ModelPointer
from trip_core.profile import ReferenceProfile


@dataclass(frozen=True)
class MetricDatum:
    name: str
    value: float
    unit: str = "None"  # CloudWatch unit name
    dimensions: tuple[tuple[str, str], ...] = ()
    timestamp: datetime | None = None


class CaptureReader(Protocol):
    def batches(self, window: Window, problems: list[str] | None = None) -> Iterator[CaptureBatch]:
        """Capture batches whose captured_at lies in the window (only its hour prefixes are listed).
        An object that cannot be decoded is skipped and described in `problems`."""
        ...


class RejectedCounter(Protocol):
    def count(self, window: Window, problems: list[str] | None = None) -> int:
        """Rejected rides whose arrival_time lies in the window; undecodable objects are skipped and
        described in `problems`."""
        ...


class ActualsReader(Protocol):
    def durations(self, days: Sequence[date]) -> dict[Any, float]:
        """ride_id -> actual duration (minutes) from the actuals of these dt= partitions."""
        ...


class ProfileSource(Protocol):
    def pointer(self, version: str) -> ModelPointer: ...

    def profile(self, pointer: ModelPointer) -> ReferenceProfile: ...


class MetricsSink(Protocol):
    def put(self, data: Sequence[MetricDatum]) -> None: ...


class ReportStore(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> None: ...

    def reports_since(self, since: datetime) -> list[dict[str, Any]]:
        """Earlier JSON drift reports with window_end >= since, oldest first."""
        ...


class StateStore(Protocol):
    def last_window_end(self) -> datetime | None: ...

    def save_window_end(self, window_end: datetime) -> None: ...


@dataclass
class Ports:
    captures: CaptureReader
    rejected: RejectedCounter
    actuals: ActualsReader
    profiles: ProfileSource
    metrics: MetricsSink
    reports: ReportStore
    state: StateStore
    extras: dict[str, Any] = field(default_factory=dict)
