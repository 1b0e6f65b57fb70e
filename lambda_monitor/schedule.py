"""Where the schedule stands: `monitor/state.json` (the last window end a scheduled run completed), read
strictly, and the windows due after it (docs/architecture.md, "Monitor (lambda_monitor)").

A scheduled run evaluates the due windows oldest first, at most `max_windows`, and the state advances
after each: a backlog (an outage, a paused schedule) is caught up over several bounded runs, never in one
that cannot finish. Due windows too old for CloudWatch to take their metrics are skipped and reported (a
backfill reports them). A state the monitor cannot read is a StateError naming the field and the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lambda_monitor.window import Window
from trip_core import jsontext
from trip_core.contracts import (
    LATE_ALLOWANCE,
    METRIC_MAX_AGE,
    MONITOR_STATE_KEY,
    MONITOR_STEP,
    MONITOR_WINDOW,
    floor_hour,
    parse_utc,
    utc_iso,
)

STATE_FIELD = "last_window_end"
MAX_QUOTED_CHARS = 40  # of a bad value, in an error (a state may be any size)
MAX_QUOTED_KEYS = 5


class StateError(ValueError):
    """monitor/state.json cannot be read: the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{MONITOR_STATE_KEY}: {field} {reason}")
        self.field, self.reason = field, reason


def encode_state(window_end: datetime) -> bytes:
    return json.dumps({STATE_FIELD: utc_iso(window_end)}).encode()


def latest_due_end(now: datetime) -> datetime:
    """The end of the newest window a run at `now` evaluates: its allowance for late data has passed."""
    return floor_hour(now) - LATE_ALLOWANCE


def decode_state(body: bytes, now: datetime) -> datetime:
    """The last window end of a state `{"last_window_end": "<ISO 8601 time>"}`. Any other body, or a time
    after the latest due end (no run with a right clock wrote it), is a StateError."""
    try:
        data = jsontext.loads(body)
    except ValueError as error:  # not JSON, or not UTF-8
        raise StateError("body", f"is not JSON ({str(error)[:MAX_QUOTED_CHARS]})") from error
    if not isinstance(data, dict):
        raise StateError("body", f"is not a JSON object but {type(data).__name__}")
    if STATE_FIELD not in data:
        raise StateError(STATE_FIELD, f"is missing (keys: {_quoted(data)})")
    unknown = [key for key in data if key != STATE_FIELD]
    if unknown:
        raise StateError("body", f"has unknown key(s) {_quoted(unknown)}")
    value = data[STATE_FIELD]
    if not isinstance(value, str):
        raise StateError(STATE_FIELD, f"is not a text but {type(value).__name__}")
    try:
        end = parse_utc(value)
    except (ValueError, OverflowError) as error:  # an offset can push a year-9999 time past the range
        raise StateError(STATE_FIELD, f"is not an ISO 8601 time: {value[:MAX_QUOTED_CHARS]!r}") from error
    latest = latest_due_end(now)
    if floor_hour(end) > latest:
        raise StateError(
            STATE_FIELD,
            f"is in the future: {utc_iso(end)}, after the latest due window end {utc_iso(latest)}",
        )
    return end


def _quoted(keys: Iterable[str]) -> list[str]:
    """The first few keys, each cut short: what an error shows of a body that may be any size."""
    return sorted(key[:MAX_QUOTED_CHARS] for key in keys)[:MAX_QUOTED_KEYS]


def fresh_start(now: datetime, max_windows: int) -> datetime:
    """A last end from which a run evaluates the `max_windows` latest due windows: where a run restarts
    when the state is unreadable (it may have been that far behind; more is a backfill's job)."""
    return latest_due_end(now) - max_windows * MONITOR_STEP


def backfill_metrics_time(window: Window, now: datetime) -> datetime:
    """When the schedule would have evaluated the window (never in the future)."""
    return min(window.end + LATE_ALLOWANCE, now)


def _ends(first: datetime, last: datetime) -> int:
    """The window ends first, first + MONITOR_STEP, ... up to last (inclusive)."""
    return (last - first) // MONITOR_STEP + 1 if first <= last else 0


@dataclass(frozen=True)
class Skipped:
    """Due window ends the schedule gave up: first to last, every MONITOR_STEP."""

    first_end: datetime
    last_end: datetime
    count: int

    def to_json(self) -> dict[str, Any]:
        return {"first_end": utc_iso(self.first_end), "last_end": utc_iso(self.last_end), "count": self.count}


@dataclass(frozen=True)
class Schedule:
    """The windows a scheduled run evaluates (oldest first), how many due ones it leaves to later runs,
    and the due ends it skipped."""

    windows: list[Window]
    behind: int = 0  # due window ends after this run's, one per MONITOR_STEP
    skipped: Skipped | None = None

    def lag_after(self, evaluated: int) -> timedelta:
        """How far behind the schedule is once `evaluated` of the windows are done."""
        return (self.behind + len(self.windows) - evaluated) * MONITOR_STEP

    def metrics_time(self, window: Window, now: datetime) -> datetime:
        """A run that catches up stamps its windows `now`, so a short outage's windows reach the alarms;
        one still behind after them stamps each at the time the schedule would have evaluated it, as a
        backfill does, so a verdict days old never reaches the alarms as current."""
        return now if self.behind == 0 else backfill_metrics_time(window, now)


def due_windows(last_end: datetime | None, now: datetime, max_windows: int) -> Schedule:
    """Windows of MONITOR_WINDOW ending every MONITOR_STEP after the last evaluated end (none: only the
    latest), up to latest_due_end(now); at most `max_windows`, the oldest. Due ends whose metrics CloudWatch
    would refuse (METRIC_MAX_AGE) are skipped."""
    latest = latest_due_end(now)
    first = latest if last_end is None else floor_hour(last_end) + MONITOR_STEP
    oldest = latest - METRIC_MAX_AGE + MONITOR_STEP
    skipped = None
    if first < oldest:
        skipped = Skipped(first, oldest - MONITOR_STEP, _ends(first, oldest - MONITOR_STEP))
        first = oldest
    due = _ends(first, latest)
    taken = min(due, max_windows)
    ends = [first + k * MONITOR_STEP for k in range(taken)]
    return Schedule([Window(end - MONITOR_WINDOW, end) for end in ends], due - taken, skipped)
