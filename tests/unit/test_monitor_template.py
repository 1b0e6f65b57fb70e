"""The template's monitor alarms and dashboard agree with what the monitor publishes; the liveness alarms
(errors, heartbeat, lag) fit the schedule, also on a local stack, and never start the loop."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from infra.replay.alarms import OK, Published, evaluate
from infra.replay.template import AlarmRule, Template
from lambda_monitor.config import MonitorConfig
from lambda_monitor.ports import MetricDatum, Ports
from lambda_monitor.service import run_event
from lambda_retrain.config import RetrainConfig
from lambda_retrain.triggers import alarm_trigger
from tests.doubles.monitor import (
    MemoryBlobs,
    MemoryMetrics,
    MemoryProfiles,
    MemoryRejected,
    MemoryReports,
    MemoryState,
)
from trip_core.capture import ACTUAL_REJECTION_REASONS
from trip_core.contracts import MONITOR_STEP

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
NOW = datetime(2023, 3, 7, 6, 0, 5, tzinfo=UTC)
T0 = datetime(2023, 3, 6, tzinfo=UTC)
MONITOR_ALARMS = {
    "DriftShareAlarm": "DriftShare",
    "PredictionDriftAlarm": "PredictionDrift",
    "MAERatioAlarm": "MAERatio",
    "RejectedShareAlarm": "RejectedShare",
    "ActualsOutOfDomainAlarm": "ActualsOutOfDomainShare",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


def test_monitor_alarms_take_their_period_and_datapoints_from_parameters(template: dict[str, Any]) -> None:
    for name, metric in MONITOR_ALARMS.items():
        alarm = template["Resources"][name]["Properties"]
        assert alarm["MetricName"] == metric and alarm["Namespace"] == "TripDuration"
        assert alarm["Period"] == {"Ref": "AlarmPeriodSeconds"}
        assert alarm["EvaluationPeriods"] == {"Ref": "AlarmEvaluationPeriods"}
        assert alarm["DatapointsToAlarm"] == {"Ref": "AlarmDatapointsToAlarm"}
        assert alarm["TreatMissingData"] == "notBreaching"
    parameters = template["Parameters"]
    assert parameters["AlarmPeriodSeconds"]["Default"] == 3600
    assert parameters["AlarmDatapointsToAlarm"]["Default"] <= parameters["AlarmEvaluationPeriods"]["Default"]


def test_the_dashboard_shows_every_actuals_rejection_reason_and_the_new_metrics(
    template: dict[str, Any],
) -> None:
    body = str(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    for reason in ACTUAL_REJECTION_REASONS:
        assert f'"ActualsRejected", "Reason", "{reason}"' in body
    for metric in ("ActualsOutOfDomainShare", "ActualsCount", "RMSERatio", "ActualsOutOfDomainAlarm.Arn"):
        assert metric in body


def test_a_monitor_that_cannot_judge_is_not_silent(template: dict[str, Any]) -> None:
    """The verdict alarms treat missing data as OK, so MonitorErrors (published by the run) and the
    function's own Errors (a run killed before it publishes) need alarms of their own, on the dashboard."""
    resources = template["Resources"]
    errors = resources["MonitorErrorsAlarm"]["Properties"]
    assert (errors["Namespace"], errors["MetricName"], errors["Threshold"]) == (
        "TripDuration",
        "MonitorErrors",
        1,
    )
    function = resources["MonitorFunctionErrorsAlarm"]["Properties"]
    assert function["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "MonitorFunction"}}]
    body = str(resources["Dashboard"]["Properties"]["DashboardBody"])
    assert "MonitorErrorsAlarm.Arn" in body and "MonitorFunctionErrorsAlarm.Arn" in body


# The alarms that say the monitor itself is unwell: none of them may start a retrain or a rollback.
LIVENESS_ALARMS = {
    "MonitorErrorsAlarm": ("TripDuration", "MonitorErrors"),
    "MonitorFunctionErrorsAlarm": ("AWS/Lambda", "Errors"),
    "MonitorHeartbeatAlarm": ("TripDuration", "MonitorWindowsCompleted"),
    "MonitorLagAlarm": ("TripDuration", "MonitorLagHours"),
}
LOCAL_OVERRIDES = {
    "AlarmPeriodSeconds": 60,
    "AlarmEvaluationPeriods": 1,
    "AlarmDatapointsToAlarm": 1,
}  # infra/deploy_local.sh


def _rule(name: str, overrides: dict[str, Any] | None = None) -> AlarmRule:
    (found,) = [r for r in Template.load(refs=overrides).alarm_rules("TripDuration") if r.name.endswith(name)]
    return found


def test_every_monitor_liveness_alarm_notifies_the_alarm_topic_and_watches_what_the_monitor_publishes(
    template: dict[str, Any],
) -> None:
    ports = Ports(MemoryBlobs(), MemoryRejected(), MemoryProfiles(), MemoryMetrics(), MemoryReports(),
                  MemoryState())  # fmt: skip
    run_event({}, ports, MonitorConfig("m", "c", "r"), NOW)  # a fresh stack: no ride yet
    assert isinstance(ports.metrics, MemoryMetrics)
    published = {d.name for d in ports.metrics.data if not d.dimensions}
    resources = template["Resources"]
    for name, (namespace, metric) in LIVENESS_ALARMS.items():
        alarm = resources[name]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric)
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
        assert namespace != "TripDuration" or metric in published
    body = str(resources["Dashboard"]["Properties"]["DashboardBody"])
    assert all(f"{name}.Arn" in body for name in LIVENESS_ALARMS)
    assert all(f"{name}Name" in template["Outputs"] for name in LIVENESS_ALARMS)


def test_the_heartbeat_alarms_after_two_schedule_periods_without_a_completed_window(
    template: dict[str, Any],
) -> None:
    heartbeat = template["Resources"]["MonitorHeartbeatAlarm"]["Properties"]
    assert (heartbeat["Statistic"], heartbeat["ComparisonOperator"], heartbeat["Threshold"]) == (
        "Sum",
        "LessThanThreshold",
        1,
    )
    assert (heartbeat["EvaluationPeriods"], heartbeat["DatapointsToAlarm"]) == (2, 2)
    assert heartbeat["TreatMissingData"] == "breaching"  # a dead monitor publishes nothing
    assert heartbeat["Period"] == {"Ref": "MonitorPeriodSeconds"}
    lag = template["Resources"]["MonitorLagAlarm"]["Properties"]
    assert (lag["Statistic"], lag["ComparisonOperator"], lag["Threshold"]) == (
        "Minimum",
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert lag["Period"] == {"Ref": "MonitorPeriodSeconds"} and lag["TreatMissingData"] == "notBreaching"


def test_the_heartbeat_period_is_the_schedules_not_the_fast_local_alarm_period(
    template: dict[str, Any],
) -> None:
    """The drift alarms' period is 60 s on a local stack (AlarmPeriodSeconds); on that period an hourly
    monitor would be "dead" 59 minutes in 60. The heartbeat has the schedule's period, at least a window
    step (a faster schedule completes a window an hour all the same), for two periods within
    CloudWatch's seven days."""
    parameters = template["Parameters"]
    period = parameters["MonitorPeriodSeconds"]
    assert parameters["MonitorSchedule"]["Default"] == "rate(1 hour)" and period["Default"] == 3600
    assert min(period["AllowedValues"]) == MONITOR_STEP.total_seconds()
    assert all(v % 60 == 0 and 2 * v <= 7 * 86400 for v in period["AllowedValues"])
    assert _rule("-monitor-heartbeat", LOCAL_OVERRIDES).period_seconds == 3600
    assert _rule("-drift-share", LOCAL_OVERRIDES).period_seconds == 60


def _beats(hours: list[int], value: float = 1.0, minute: int = 23) -> list[Published]:
    """Runs at hh:23 (a rate schedule fires at its creation's minute), each publishing at its time."""
    out = []
    for h in hours:
        at = T0 + timedelta(hours=h, minutes=minute)
        out.append(Published(at, MetricDatum("MonitorWindowsCompleted", value, "Count", (), at)))
    return out


def test_the_heartbeat_stays_ok_while_the_monitor_runs_and_alarms_two_periods_after_it_stops() -> None:
    rule = _rule("-monitor-heartbeat")
    times = [T0 + timedelta(hours=h, minutes=30) for h in range(10)]
    alive = evaluate(rule, _beats(list(range(10))), times)
    assert {state for _, state in alive.states} == {OK}  # the first run's previous period is missing: 1 of 2
    stopped = evaluate(rule, _beats(list(range(5))), times)  # the last run at 04:23
    assert stopped.first_alarm() == T0 + timedelta(hours=6, minutes=30)
    # every five minutes, completing a window once an hour (the others find nothing due: 0)
    fast = [p for h in range(10) for p in _beats([h], 1.0, 23) + _beats([h], 0.0, 28) + _beats([h], 0.0, 33)]
    assert {state for _, state in evaluate(rule, fast, times).states} == {OK}


def test_the_retrain_function_does_not_act_on_the_monitors_liveness_alarms(template: dict[str, Any]) -> None:
    stack = Template.load(refs={"ModelsBucket": "models", "CaptureBucket": "capture"})
    config = RetrainConfig.from_env(stack.function_environment("RetrainFunction"))
    names = {
        logical_id: stack.resolve(r["Properties"]["AlarmName"])
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }

    def notified(name: str) -> Any:
        message = json.dumps({"AlarmName": name, "NewStateValue": "ALARM"})
        return alarm_trigger({"Sns": {"Message": message}}, config)

    assert notified(names["DriftShareAlarm"]) is not None and notified(names["MAERatioAlarm"]) is not None
    for logical_id in LIVENESS_ALARMS:
        assert notified(names[logical_id]) is None, logical_id
