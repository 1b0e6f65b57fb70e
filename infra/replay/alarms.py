"""The template's alarm rules evaluated on the metrics the monitor published, over simulated time, the way
CloudWatch does: a statistic per period, M of the N most recent periods breaching, missing data treated as
the rule says. Evaluated after each monitor run on the datapoints published by then, the newest period
being the one the evaluation time falls in (CloudWatch judges the current period on the data it has)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from infra.replay.template import AlarmRule
from lambda_monitor.ports import MetricDatum

ALARM, OK, INSUFFICIENT = "ALARM", "OK", "INSUFFICIENT_DATA"

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Maximum": max,
    "Minimum": min,
    "Sum": sum,
    "Average": lambda values: float(np.mean(values)),
    "SampleCount": len,
}


@dataclass(frozen=True)
class Published:
    """A datum and the simulated time it was put (its timestamp may be earlier: the window's end)."""

    at: datetime
    datum: MetricDatum

    @property
    def timestamp(self) -> datetime:
        return self.datum.timestamp or self.at


@dataclass(frozen=True)
class AlarmHistory:
    rule: AlarmRule
    states: list[tuple[datetime, str]]  # the state after each evaluation

    def first_alarm(self) -> datetime | None:
        return next((at for at, state in self.states if state == ALARM), None)

    def in_alarm(self, at: datetime) -> bool:
        return any(when == at and state == ALARM for when, state in self.states)


def _rule_points(rule: AlarmRule, points: Sequence[Published]) -> list[tuple[datetime, int, float]]:
    """(published at, period index, value) of the rule's metric, in publication order."""
    found = [
        (p.at, int(p.timestamp.timestamp()) // rule.period_seconds, float(p.datum.value))
        for p in points
        if p.datum.name == rule.metric and tuple(sorted(p.datum.dimensions)) == rule.dimensions
    ]
    return sorted(found, key=lambda item: item[0])


def next_state(rule: AlarmRule, window: Sequence[float | None], state: str) -> str:
    """The state after one evaluation of the N most recent periods (None = no datapoint)."""
    breaches = COMPARISONS[rule.comparison]
    present = [value for value in window if value is not None]
    treat = rule.treat_missing_data
    if treat in ("ignore", "missing") and not present:
        return state if treat == "ignore" else INSUFFICIENT
    if treat == "breaching":
        flags = [value is None or breaches(value, rule.threshold) for value in window]
    else:
        flags = [breaches(value, rule.threshold) for value in present]
    return ALARM if sum(flags) >= rule.datapoints_to_alarm else OK


class LiveAlarm:
    """One alarm evaluated as the replay goes: `step(points, at)` with every datapoint published by `at`
    (in publication order; the previous step's are a prefix) takes the new ones and returns the state."""

    def __init__(self, rule: AlarmRule) -> None:
        self.rule = rule
        self.grouped: dict[int, list[float]] = {}
        self.taken = 0
        self.state = INSUFFICIENT

    def step(self, points: Sequence[Published], at: datetime) -> str:
        rule = self.rule
        for _, period, value in _rule_points(rule, points[self.taken :]):
            self.grouped.setdefault(period, []).append(value)
        self.taken = len(points)
        newest = int(at.timestamp()) // rule.period_seconds
        periods = range(newest - rule.evaluation_periods + 1, newest + 1)
        grouped = self.grouped
        window = [STATISTICS[rule.statistic](grouped[p]) if p in grouped else None for p in periods]
        self.state = next_state(rule, window, self.state)
        return self.state


def evaluate(rule: AlarmRule, points: Sequence[Published], times: Sequence[datetime]) -> AlarmHistory:
    """The alarm's state at each evaluation time, on the datapoints published by then."""
    ordered = sorted(points, key=lambda p: p.at)
    live, taken, states = LiveAlarm(rule), 0, []
    for at in times:
        while taken < len(ordered) and ordered[taken].at <= at:
            taken += 1
        states.append((at, live.step(ordered[:taken], at)))
    return AlarmHistory(rule, states)
