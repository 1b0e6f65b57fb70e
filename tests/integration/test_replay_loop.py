"""The replay's loop wiring (infra/replay/loop.py) on moto: the retrain function is notified when an alarm it
acts on changes state (not again while it stays in ALARM), its schedule ticks at the template's rate, and
the alarm's state is readable back from CloudWatch as the real one would be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.replay.alarms import ALARM, Published
from infra.replay.loop import ReplayLoop
from infra.replay.simulation import simulated_aws, stack_template
from lambda_monitor.ports import MetricDatum

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
