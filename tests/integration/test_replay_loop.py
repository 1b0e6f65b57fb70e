"""The replay's loop (infra/replay/loop.py) on moto: the retrain function is notified when an alarm it acts
on changes state (not again while it stays in ALARM), its schedule ticks at the template's rate, the alarm's
state is readable back from CloudWatch as the real one would be; and the loop heals a 2021 model on 2023
rides at real daily volume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from infra.replay.alarms import ALARM, Published
from infra.replay.loop import ReplayLoop
from infra.replay.model import train_model
from infra.replay.scenario import loop_lines, run_replay
from infra.replay.simulation import simulated_aws, stack_template
from infra.replay.traffic import build_traffic
from lambda_monitor.ports import MetricDatum
from tests.integration.test_replay import month

START = datetime(2023, 3, 1, 5, tzinfo=UTC)


def test_a_drift_alarm_notifies_the_loop_once_and_the_schedule_ticks_every_run() -> None:
    template = stack_template()
    drift_alarm = template.function_environment("RetrainFunction")["RETRAIN_ALARMS"]
    with simulated_aws() as clients:
        loop = ReplayLoop.wire(clients, template, "TripDuration")
        points: list[Published] = []
        for k in range(6):
            at = START + timedelta(hours=k)
            points.append(Published(at, MetricDatum("DriftShare", 1.0, timestamp=at)))
            loop.after_monitor(points, at)
        state = clients["cloudwatch"].describe_alarms(AlarmNames=[drift_alarm])["MetricAlarms"][0]
    notified = [d for d in loop.decisions if d.trigger == f"{drift_alarm} -> {ALARM}"]
    assert len(notified) == 1  # three breaching periods of three, then it stays in ALARM: one notification
    assert loop.first_alarm == START + timedelta(hours=2) == notified[0].at
    assert notified[0].answer["kind"] == "skipped"  # no labelled rides in the buckets
    assert state["StateValue"] == ALARM
    assert loop.schedule is not None and loop.next_tick == START + timedelta(hours=6)


# The heal at real volume, scaled down to a few days: the 2021 model on every ride of 2023-03's first days
# (~2,300 labelled a day) with their actuals; MinLabelledRows and RetrainTargetRows scaled to the days.
HEAL_DAYS = 3  # the promotion comes on day 2: a day of later rides no model trained on
# a cooldown of half a day: fewer fits (each on the 2021 month + the recent rows), the test's cost
HEAL_PARAMETERS = {"RetrainTargetRows": "4000", "MinLabelledRows": "2000", "RetrainCooldownMinutes": "720"}
MAX_ITER = 40  # the 2021 model, as tests/integration/test_replay.py trains it


def test_the_loop_heals_a_2021_model_on_2023_rides_at_real_volume(tmp_path: Path) -> None:
    model = train_model([month("2021-01")], month("2021-02"), tmp_path, MAX_ITER)
    traffic = build_traffic([month("2023-03")], days=HEAL_DAYS)
    outcome = run_replay(
        traffic, model, with_loop=True, parameters=HEAL_PARAMETERS, evaluation=str(month("2023-02"))
    )
    loop = outcome.recorded.loop
    assert loop is not None
    print("\n".join(loop_lines(loop)))
    assert loop["labelled_rows_per_day_median"] > 2000
    assert loop["promoted"] is not None, loop["decisions"]
    after = loop["after_promotion"]
    assert after["rides"] > 1000  # a day or more of rides no model trained on
    assert after["mae_promoted_model"] < after["mae_initial_model"]
    assert after["mae_served"] < after["mae_initial_model"]
