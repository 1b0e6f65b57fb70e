"""What the monitor needs from the outside world; boto3 adapters in `aws`, in-memory fakes in
tests/doubles/monitor.py. Captures and actuals are read from the capture bucket through
trip_core.event_window (the reader the retrain loop uses too)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from lambda_monitor.window import Window
from trip_core.event_window import BlobSource
from trip_core.pointer import ModelPointer
from trip_core.profile import ReferenceProfile


@dataclass(frozen=True)
class MetricDatum:
    name: str
    value: float
    unit: str = "None"  # CloudWatch unit name
    dimensions: tuple[tuple[str, str], ...] = ()
    timestamp: datetime | None = None


class RejectedCounter(Protocol):
    def count(self, window: Window, problems: list[str] | None = None) -> int:
        """Rejected rides whose arrival_time lies in the window (a rejected ride may have no valid
        pickup: rejected objects are partitioned by processing hour); undecodable objects are skipped
        and described in `problems`."""
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
    """monitor/state.json as bytes (its format: lambda_monitor.schedule)."""

    def read(self) -> bytes | None: ...  # None when there is no state

    def write(self, body: bytes) -> None: ...

    def set_aside(self, key: str, body: bytes) -> None:
        """Keep an unreadable state's body under `key` (trip_core.contracts.unreadable_state_key)."""
        ...


@dataclass
class Ports:
    capture: BlobSource  # the capture bucket: captures/ and actuals/
    rejected: RejectedCounter
    profiles: ProfileSource
    metrics: MetricsSink
    reports: ReportStore
    state: StateStore
    extras: dict[str, Any] = field(default_factory=dict)
