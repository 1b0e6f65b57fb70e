"""A no-drift week and three drift days replayed in-process (infra.replay: the prediction service, the capture
format, the monitor's scheduled runs and the template's alarms over moto) against the issue's goals.

Small models (few boosting iterations) keep the test short; the verdicts are the monitor's, on its own
statistics and windows. The goals (issue 12): no drift -> dataset drift in at most 1 % of the windows with
a verdict and neither the drift nor the MAE alarm in ALARM; drift -> the drift alarm reaches ALARM.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.replay.model import ModelFiles, train_model
from infra.replay.scenario import Outcome, run_replay
from infra.replay.traffic import build_traffic

DATA = Path(__file__).resolve().parents[2] / "data"
WEEK = 7
DRIFT_DAYS = 3  # the drift alarm needs its periods' datapoints within the first day
MAX_ITER = 40


def month(name: str) -> str:
    return str(DATA / f"green_tripdata_{name}.parquet")


def days_of_2023_03(model: ModelFiles, days: int) -> Outcome:
    return run_replay(build_traffic([month("2023-03")], days=days), model)


@pytest.fixture(scope="module")
def no_drift(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    out = tmp_path_factory.mktemp("model-2023")
    model = train_model([month("2023-01"), month("2023-02")], month("2023-03"), out, MAX_ITER)
    return days_of_2023_03(model, WEEK)


@pytest.fixture(scope="module")
def drift(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    out = tmp_path_factory.mktemp("model-2021")
    return days_of_2023_03(train_model([month("2021-01")], month("2021-02"), out, MAX_ITER), DRIFT_DAYS)


def alarm(outcome: Outcome, suffix: str) -> dict[str, object]:
    found = [state for name, state in outcome.line["alarms"].items() if name == f"trip-duration-dev{suffix}"]
    assert len(found) == 1, outcome.line["alarms"]
    return found[0]


def test_the_replay_runs_every_ride_through_the_service(no_drift: Outcome) -> None:
    counts = no_drift.recorded.counts
    assert counts["sent"] == len(no_drift.traffic)
    assert counts["predicted"] + counts["rejected"] == counts["sent"]
    assert no_drift.line["windows"] == len(no_drift.recorded.runs) == WEEK * 24 + 1
    # an hourly monitor that completes every window is never dead nor behind
    assert alarm(no_drift, "-monitor-heartbeat")["reached_alarm"] is False, no_drift.line
    assert alarm(no_drift, "-monitor-lag")["reached_alarm"] is False, no_drift.line


def test_no_drift_week_raises_no_drift(no_drift: Outcome) -> None:
    line = no_drift.line
    assert line["windows_with_verdict"] > 0, line
    assert line["dataset_drift_windows"] <= 0.01 * line["windows_with_verdict"], line
    assert alarm(no_drift, "-drift-share")["reached_alarm"] is False, line
    assert alarm(no_drift, "-mae-ratio")["reached_alarm"] is False, line


def test_drift_week_reaches_the_drift_alarm(drift: Outcome) -> None:
    assert alarm(drift, "-drift-share")["reached_alarm"] is True, drift.line
