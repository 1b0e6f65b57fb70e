"""In-memory fakes of the ports, for unit tests and local runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lambda_monitor.ports import MetricDatum
from lambda_monitor.schedule import encode_state
from lambda_monitor.window import Window
from tests.doubles.captures import capture_objects
from trip_core.capture import Actual, CaptureBatch, encode_actuals
from trip_core.contracts import actuals_key, parse_utc
from trip_core.pointer import ModelPointer
from trip_core.profile import ReferenceProfile, read_profile

# A scheduled run's moment and the window it evaluates: the one ending 05:00 UTC, midnight in New York,
# so the rides picked up on 2023-03-06 there.
SCHEDULED_AT = datetime(2023, 3, 7, 6, 0, 5, tzinfo=UTC)
SCHEDULED_DAY = Window(datetime(2023, 3, 6, 5, tzinfo=UTC), datetime(2023, 3, 7, 5, tzinfo=UTC))


@dataclass
class MemoryBlobs:
    """The capture bucket in memory (key -> bytes), filled through the real keys and encodings."""

    objects: dict[str, bytes] = field(default_factory=dict)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def put_capture(
        self, batch: CaptureBatch, shard_id: str = "shardId-000", first_seq: str = "0"
    ) -> list[str]:
        """The batch as the predict function writes it: one object per UTC pickup hour; their keys."""
        objects = capture_objects(batch, shard_id, first_seq)
        self.objects.update(objects)
        return list(objects)

    def put_actuals(self, reported_at: datetime, name: str, body: bytes | list[Actual]) -> str:
        """An actuals object as a client writes it (JSON lines, or raw bytes); its key."""
        key = actuals_key(reported_at, name)
        self.objects[key] = body if isinstance(body, bytes) else encode_actuals(body)
        return key


@dataclass
class MemoryRejected:
    arrival_times: list[datetime] = field(default_factory=list)

    def count(self, window: Window, problems: list[str] | None = None) -> int:
        return sum(window.contains(moment) for moment in self.arrival_times)


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
    """monitor/state.json (`body`) and the unreadable states set aside (key -> body)."""

    body: bytes | None = None
    aside: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def at(cls, window_end: datetime) -> MemoryState:
        """The state a run leaves after completing the window ending at `window_end`."""
        return cls(encode_state(window_end))

    def read(self) -> bytes | None:
        return self.body

    def write(self, body: bytes) -> None:
        self.body = body

    def set_aside(self, key: str, body: bytes) -> None:
        self.aside[key] = body

    def last_window_end(self) -> datetime | None:
        """What the state says, as the monitor writes it."""
        return None if self.body is None else parse_utc(json.loads(self.body)["last_window_end"])
