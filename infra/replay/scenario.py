"""One replay from traffic to findings: simulate, evaluate the alarms, tabulate, draw, write."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.replay.alarms import AlarmHistory, evaluate
from infra.replay.model import ModelFiles
from infra.replay.picture import render_svg
from infra.replay.results import WindowRow, interface_line, summary, table, window_row
from infra.replay.simulation import Recorded, replay, stack_template
from infra.replay.traffic import Traffic
from trip_core.contracts import MONITOR_STEP

# Rides sent within one simulated hour reach the function together, in batches of at most the template's
# BatchSize: the same rides and captured rows as production's shorter batching windows, in fewer capture
# objects (each is an S3 read per window it is in: the replay's cost); the verdicts do not depend on it.
DEFAULT_BATCH_MINUTES = 60.0


@dataclass(frozen=True)
class Outcome:
    traffic: Traffic
    recorded: Recorded
    rows: list[WindowRow]
    histories: list[AlarmHistory]
    line: dict[str, Any]  # the Interface's JSON line
    wall_seconds: float

    @property
    def origin(self) -> datetime:
        """Where alarm delays count from: the injection, else the first ride."""
        start = self.traffic.injected_at if self.traffic.injected_at is not None else self.traffic.first_ride
        return datetime.fromtimestamp(start, UTC)

    def alarm_hours(self, suffix: str) -> float | None:
        """first_alarm_hours of the alarm whose name ends with `suffix` (the stage prefix varies)."""
        found = [
            v for name, v in self.line["alarms"].items() if re.fullmatch(f"trip-duration-[^-]+{suffix}", name)
        ]
        return found[0]["first_alarm_hours"] if found else None


def run_replay(
    traffic: Traffic,
    files: ModelFiles,
    batch_minutes: float = DEFAULT_BATCH_MINUTES,
    with_loop: bool = False,
    parameters: dict[str, str] | None = None,
    evaluation: str | None = None,
) -> Outcome:
    """`with_loop`: the retrain function runs on its alarms and schedule, gated on the `evaluation`
    month (a TLC parquet file, published as training publishes it); `parameters`: template parameter
    overrides."""
    template = stack_template(parameters=parameters)
    recorded, wall = replay(traffic, files, template, batch_minutes, with_loop, evaluation)
    rules = template.alarm_rules(template.function_environment("MonitorFunction")["METRICS_NAMESPACE"])
    histories = [evaluate(rule, recorded.points, recorded.runs) for rule in rules]
    rows = sorted((window_row(r, histories) for r in recorded.reports), key=lambda row: row.end)
    outcome = Outcome(traffic, recorded, rows, histories, {}, wall)
    outcome.line.update(interface_line(rows, histories, recorded.points, outcome.origin))
    if recorded.loop is not None:
        outcome.line["loop"] = {k: v for k, v in recorded.loop.items() if k != "labelled_rows_per_day"}
    return outcome


def write_picture(outcome: Outcome, path: Path, title: str) -> None:
    ratio_rules = [h.rule.threshold for h in outcome.histories if h.rule.metric == "MAERatio"]
    injected = outcome.traffic.injected_at
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        render_svg(
            outcome.rows,
            outcome.histories,
            MONITOR_STEP,
            ratio_rules[0] if ratio_rules else None,
            None if injected is None else datetime.fromtimestamp(injected, UTC),
            title,
        )
    )


def report_lines(outcome: Outcome) -> list[str]:
    """The per-window table, the summary and, last, the JSON line."""
    minutes = outcome.wall_seconds / 60
    days = (outcome.traffic.end - outcome.traffic.first_ride) / timedelta(days=1).total_seconds()
    return [
        *table(outcome.rows),
        "",
        *summary(outcome.rows, outcome.histories, outcome.recorded.counts),
        *loop_lines(outcome.recorded.loop),
        f"replayed {days:.1f} simulated days in {minutes:.1f} min wall time",
        json.dumps(outcome.line),
    ]


def loop_lines(loop: dict[str, Any] | None) -> list[str]:
    """The loop's figures (infra.replay.loop.loop_figures), when it ran."""
    if loop is None:
        return []
    per_day = " ".join(f"{day[5:]}:{n}" for day, n in loop["labelled_rows_per_day"].items())
    lines = [
        f"loop: labelled rows per day (median {loop['labelled_rows_per_day_median']:g}): {per_day}",
        f"loop: decisions {loop['decisions']}; first alarm {loop['first_alarm']}",
    ]
    promoted = loop.get("promoted")
    if promoted is None:
        return [*lines, "loop: no promotion"]
    lines.append(
        f"loop: version {promoted['version']} promoted at {promoted['at']} ({promoted['trigger']}, "
        f"{promoted['labelled_rows']} labelled rows, {promoted['retrain_wall_seconds']} s wall): "
        f"{loop['hours_alarm_to_promotion']} h after the first alarm, serving "
        f"{loop['hours_alarm_to_served']} h after it"
    )
    after = loop.get("after_promotion")
    if after:
        lines.append(
            f"loop: MAE on the {after['rides']} rides after that (no model trained on them): served "
            f"{after['mae_served']}, initial model {after['mae_initial_model']}, promoted model "
            f"{after['mae_promoted_model']} (served before: {loop['served_mae_before']})"
        )
    return lines
