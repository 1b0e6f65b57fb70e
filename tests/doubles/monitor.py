"""In-memory fakes of the ports, for unit tests and local runs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from lambda_monitor.ports import MetricDatum
from lambda_monitor.window import Window
from trip_core.capture import Actual, CaptureBatch, decode_capture
from trip_core.contracts import parse_utc
from trip_core.pointer import ModelPointer
from trip_core.profile import ReferenceProfile, read_profile


@dataclass
class MemoryCaptures:
    """Decoded batches, or stored bytes (decoded like the S3 adapter does, corrupt ones reported)."""

    items: list[CaptureBatch | bytes] = field(default_factory=list)

    def batches(self, window: Window, problems: list[str] | None = None) -> Iterator[CaptureBatch]:
        for i, item in enumerate(self.items):
            try:
                batch = decode_capture(item) if isinstance(item, bytes) else item
                inside = window.contains(parse_utc(batch.captured_at))
            except ValueError as error:
                if problems is not None:
                    problems.append(f"capture object #{i}: {error}")
                continue
            if inside:
                yield batch


@dataclass
class MemoryRejected:
    arrival_times: list[datetime] = field(default_factory=list)

    def count(self, window: Window, problems: list[str] | None = None) -> int:
        return sum(window.contains(moment) for moment in self.arrival_times)


@dataclass
class MemoryActuals:
    by_day: dict[date, list[Actual]] = field(default_factory=dict)

    def durations(self, days: Sequence[date]) -> dict[Any, float]:
        return {a.ride_id: a.duration_minutes for day in days for a in self.by_day.get(day, [])}


@dataclass
class MemoryProfiles:
    pointers: dict[str, ModelPointer] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # profile_key -> profile dict

    def pointer(self, version: str) -> ModelPointer:
        if version not in self.pointers:
            raise LookupError(f"no pointer for model version {version}")
        return self.pointers[version]

    def profile(self, pointer: ModelPointer) -> ReferenceProfile:
        if pointer.profile_key not in self.profiles:
            raise LookupError(f"no reference profile at {pointer.profile_key}")
        return read_profile(self.profiles[pointer.profile_key])


@dataclass
class MemoryMetrics:
    calls: list[list[MetricDatum]] = field(default_factory=list)

    def put(self, data: Sequence[MetricDatum]) -> None:
        self.calls.append(list(data))

    @property
    def data(self) -> list[MetricDatum]:
        return [datum for call in self.calls for datum in call]

    def find(self, name: str, **dimensions: str) -> list[MetricDatum]:
        wanted = tuple(sorted(dimensions.items()))
        return [d for d in self.data if d.name == name and tuple(sorted(d.dimensions)) == wanted]


@dataclass
class MemoryReports:
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = (body, content_type)

    def reports_since(self, since: datetime) -> list[dict[str, Any]]:
        reports = [
            json.loads(body) for key, (body, _) in sorted(self.objects.items()) if key.endswith(".json")
        ]
        return [r for r in reports if parse_utc(r["window"]["end"]) >= since]


@dataclass
class MemoryState:
    value: datetime | None = None

    def last_window_end(self) -> datetime | None:
        return self.value

    def save_window_end(self, window_end: datetime) -> None:
        self.value = window_end
