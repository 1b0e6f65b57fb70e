"""The template's monitor alarms and dashboard agree with what the monitor publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from trip_core.capture import ACTUAL_REJECTION_REASONS

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
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
