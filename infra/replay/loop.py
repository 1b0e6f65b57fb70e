"""The closed loop in the replay (`--loop`): the retrain function's logic (lambda_retrain.loop.handle) on the
moto buckets, on the simulated clock, triggered as the template wires it: an SNS notification when one of
the alarms it acts on (RETRAIN_ALARMS, ROLLBACK_ALARMS) changes state, evaluated live after every monitor
run (infra/replay/alarms.py), and its Schedule event (rate and Input from template.yaml). CloudWatch notifies
on a state change only: an alarm that stays in ALARM is not notified again. Its state is also kept in moto
CloudWatch (the alarm created with the rule's name, set_alarm_state at each change), so code that reads it
back (DescribeAlarms) sees what CloudWatch would. A promotion moves serving/live.json; the replay's
prediction service picks it up within its pointer TTL, as the function does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from infra.replay.alarms import ALARM, OK, LiveAlarm, Published
from infra.replay.template import Template
from lambda_retrain.aws import CloudWatchAlarms, S3Store
from lambda_retrain.config import RetrainConfig
from lambda_retrain.labelled import LabelledRides, load_labelled
from lambda_retrain.loop import handle
from lambda_retrain.ports import Ports
from lambda_retrain.registry import version_pointer
from training import metrics
from trip_core.bundle import load_bundle
from trip_core.contracts import utc_iso

FUNCTION = "RetrainFunction"
ACTOR = "replay"
_RATE = re.compile(r"^rate\((\d+) minutes?\)$")


@dataclass(frozen=True)
class LoopDecision:
    at: datetime  # simulated time of the invocation
    trigger: str  # "<alarm name> -> ALARM" or "schedule"
    answer: dict[str, Any]  # one decision of the handler's answer
    wall_seconds: float  # the handler's wall time for the whole invocation


@dataclass(frozen=True)
class Schedule:
    every: timedelta
    event: dict[str, Any]


def schedule_of(template: Template) -> Schedule | None:
    """The function's Schedule event, if it has one (rate in minutes, its Input as the event)."""
    events = template.resources("AWS::Serverless::Function")[FUNCTION].get("Events", {})
    for event in events.values():
        if event.get("Type") == "Schedule":
            properties = template.resolve(event["Properties"])
            match = _RATE.match(str(properties["Schedule"]))
            if match is None:
                raise ValueError(f"{FUNCTION} schedule {properties['Schedule']!r}: only rate(N minutes)")
            return Schedule(timedelta(minutes=int(match.group(1))), json.loads(properties["Input"]))
    return None


def sns_event(alarm: str, state: str, at: datetime) -> dict[str, Any]:
    """An alarm notification as CloudWatch publishes it through SNS (the fields the loop reads)."""
    message = {
        "AlarmName": alarm,
        "NewStateValue": state,
        "NewStateReason": f"replay: {alarm} -> {state}",
        "StateChangeTime": at.isoformat(),
    }
    return {"Records": [{"Sns": {"Message": json.dumps(message)}}]}


@dataclass
class ReplayLoop:
    ports: Ports
    config: RetrainConfig
    alarms: list[LiveAlarm]
    schedule: Schedule | None
    cloudwatch: Any
    decisions: list[LoopDecision] = field(default_factory=list)
    first_alarm: datetime | None = None  # the first notification of ALARM the loop acts on
    next_tick: datetime | None = None

    @classmethod
    def wire(cls, clients: dict[str, Any], template: Template, namespace: str) -> ReplayLoop:
        config = RetrainConfig.from_env(template.function_environment(FUNCTION))
        s3, cloudwatch = clients["s3"], clients["cloudwatch"]
        ports = Ports(
            S3Store(config.models_bucket, s3),
            S3Store(config.capture_bucket, s3),
            CloudWatchAlarms(cloudwatch),
        )
        acted_on = {*config.retrain_alarms, *config.rollback_alarms}
        rules = [rule for rule in template.alarm_rules(namespace) if rule.name in acted_on]
        for rule in rules:
            cloudwatch.put_metric_alarm(
                AlarmName=rule.name,
                Namespace=rule.namespace,
                MetricName=rule.metric,
                Statistic=rule.statistic,
                Period=rule.period_seconds,
                EvaluationPeriods=rule.evaluation_periods,
                Threshold=rule.threshold,
                ComparisonOperator=rule.comparison,
            )
        return cls(ports, config, [LiveAlarm(rule) for rule in rules], schedule_of(template), cloudwatch)

    def after_monitor(self, points: Sequence[Published], at: datetime) -> None:
        """After a monitor run at `at`: the alarms' notifications, then the schedule's tick if due."""
        for alarm in self.alarms:
            before = alarm.state
            state = alarm.step(points, at)
            if state != before and state in (ALARM, OK):  # AlarmActions and OKActions
                if state == ALARM and self.first_alarm is None:
                    self.first_alarm = at
                reason = f"replay: evaluated at {utc_iso(at)}"
                self.cloudwatch.set_alarm_state(
                    AlarmName=alarm.rule.name, StateValue=state, StateReason=reason
                )
                self._invoke(sns_event(alarm.rule.name, state, at), f"{alarm.rule.name} -> {state}", at)
        if self.schedule is None:
            return
        self.next_tick = self.next_tick or at
        if self.next_tick <= at:  # the ticks since the last run are one: nothing was judged in between
            self._invoke(self.schedule.event, "schedule", at)
        while self.next_tick <= at:
            self.next_tick += self.schedule.every

    def _invoke(self, event: dict[str, Any], trigger: str, at: datetime) -> None:
        started = time.perf_counter()
        answer = handle(event, self.ports, self.config, at, ACTOR)
        seconds = time.perf_counter() - started
        self.decisions.extend(LoopDecision(at, trigger, d, seconds) for d in answer["decisions"])

    def promotions(self) -> list[LoopDecision]:
        return [d for d in self.decisions if d.answer.get("kind") == "promoted"]


def _mae(predicted: np.ndarray, target: np.ndarray) -> float | None:
    return round(metrics.mae(predicted, target), 4) if len(target) else None


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start) / timedelta(hours=1), 2)


def labelled_per_day(rides: LabelledRides) -> dict[str, int]:
    """Labelled rides per New York pickup day."""
    days, counts = np.unique(rides.pickup.astype("datetime64[D]"), return_counts=True)
    return {str(day): int(count) for day, count in zip(days, counts, strict=True)}


def loop_figures(
    loop: ReplayLoop, first_served: dict[str, datetime], initial: bytes, start: datetime, end: datetime
) -> dict[str, Any]:
    """What the loop did and what it was worth: labelled rows per day, the first alarm -> the first
    promotion -> its first prediction served, and the MAE on the rides picked up after that first
    prediction (which no model trained on): as served (the loop), by the initial model, by the promoted."""
    everything = load_labelled(loop.ports.capture, start, end)
    per_day = labelled_per_day(everything)
    kinds = [d.answer.get("kind") for d in loop.decisions]
    figures: dict[str, Any] = {
        "labelled_rows_per_day_median": float(np.median(list(per_day.values()))) if per_day else 0.0,
        "labelled_rows_per_day": per_day,
        "decisions": {str(kind): kinds.count(kind) for kind in sorted(set(map(str, kinds)))},
        "first_alarm": None if loop.first_alarm is None else utc_iso(loop.first_alarm),
    }
    promoted = next((d for d in loop.promotions()), None)
    if promoted is None:
        return {**figures, "promoted": None}
    version = str(promoted.answer["version"])
    served_at = first_served.get(version)
    figures.update(
        promoted={
            "version": version,
            "at": utc_iso(promoted.at),
            "trigger": promoted.trigger,
            "labelled_rows": promoted.answer.get("data", {}).get("labelled_rows"),
            "retrain_wall_seconds": round(promoted.wall_seconds, 1),
        },
        hours_alarm_to_promotion=_hours(loop.first_alarm, promoted.at),
        hours_alarm_to_served=_hours(loop.first_alarm, served_at),
    )
    if served_at is None:
        return figures
    after = load_labelled(loop.ports.capture, served_at, end)
    pointer = version_pointer(loop.ports.models, version)
    body = None if pointer is None else loop.ports.models.get(pointer.bundle_key)
    figures["after_promotion"] = {
        "rides": len(after),
        "mae_served": _mae(after.served, after.target),
        "mae_initial_model": _mae(load_bundle(initial).predict(after.features), after.target),
        "mae_promoted_model": None
        if body is None
        else _mae(load_bundle(body).predict(after.features), after.target),
    }
    before = everything.rows(everything.pickup < after.pickup.min()) if len(after) else everything
    figures["served_mae_before"] = _mae(before.served, before.target)
    return figures
