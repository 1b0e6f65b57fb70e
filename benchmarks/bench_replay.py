"""The replay's goal scenarios (issue 12's goal table), each a whole month replayed in-process by
infra.replay on a simulated clock, the template's alarms evaluated on the published metrics.

Prints JSON lines {"metric", "value", "unit", "note"} (the note of each goal says what it asks, what was
measured, and whether it is met) and the goal table on stderr. Measures; asserts nothing. Models are trained
as `make train` trains them (bundle directories in .state/bench-replay/<name>/).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.replay.model import ModelFiles, train_model
from infra.replay.scenario import Outcome, run_replay
from infra.replay.traffic import Injection, build_traffic
from trip_core.contracts import MONITOR_WINDOW

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".state" / "bench-replay"
DATA = ROOT / "data"
WITHIN_HOURS = MONITOR_WINDOW.total_seconds() / 3600  # "within 24 h" of the goals
MODELS = {
    "2023-01+02": (
        ["green_tripdata_2023-01.parquet", "green_tripdata_2023-02.parquet"],
        "green_tripdata_2023-03.parquet",
    ),
    "2021-01": (["green_tripdata_2021-01.parquet"], "green_tripdata_2021-02.parquet"),
}
REPLAY = "green_tripdata_2023-03.parquet"


@dataclass(frozen=True)
class Goal:
    scenario: str
    model: str
    inject: str | None
    goal: str
    judge: Callable[[Outcome], tuple[str, bool]]  # (what was measured, met)


def _hours(value: float | None) -> str:
    return "never" if value is None else f"{value:g} h"


def _drift_share(outcome: Outcome) -> float:
    line = outcome.line
    return (
        line["dataset_drift_windows"] / line["windows_with_verdict"] if line["windows_with_verdict"] else 0.0
    )


def no_drift(outcome: Outcome) -> tuple[str, bool]:
    drift, mae = outcome.alarm_hours("-drift-share"), outcome.alarm_hours("-mae-ratio")
    share = _drift_share(outcome)
    line = outcome.line
    measured = (
        f"dataset drift in {line['dataset_drift_windows']} of {line['windows_with_verdict']} windows with "
        f"a verdict ({share:.1%}); drift alarm {_hours(drift)}, MAE alarm {_hours(mae)}"
    )
    return measured, outcome.line[
        "windows_with_verdict"
    ] > 0 and share <= 0.01 and drift is None and mae is None


def real_drift(outcome: Outcome) -> tuple[str, bool]:
    first = next((row for row in outcome.rows if row.dataset_drift), None)
    hours = None if first is None else (first.evaluated_at - outcome.origin).total_seconds() / 3600
    alarm = outcome.alarm_hours("-drift-share")
    measured = f"first dataset drift after {_hours(hours)}; drift alarm after {_hours(alarm)}"
    return measured, alarm is not None and 0 <= alarm <= WITHIN_HOURS


def covariate(outcome: Outcome) -> tuple[str, bool]:
    after = [row for row in outcome.rows if row.evaluated_at >= outcome.origin]
    first = next((row for row in after if row.features.get("trip_distance", (False, None))[0]), None)
    hours = None if first is None else (first.evaluated_at - outcome.origin).total_seconds() / 3600
    alarm = outcome.alarm_hours("-drift-share")
    measured = f"trip_distance drift after {_hours(hours)}; drift alarm {_hours(alarm)}"
    return measured, hours is not None and hours <= WITHIN_HOURS


def concept(outcome: Outcome) -> tuple[str, bool]:
    mae, drift = outcome.alarm_hours("-mae-ratio"), outcome.alarm_hours("-drift-share")
    measured = f"MAE alarm after {_hours(mae)}; input-drift alarm {_hours(drift)}"
    return measured, mae is not None and 0 <= mae <= WITHIN_HOURS and drift is None


GOALS = (
    Goal("no drift: 2023-01+02 model, replay 2023-03", "2023-01+02", None,
         "dataset drift in <= 1 % of evaluated windows; drift and MAE alarms never in ALARM", no_drift),
    Goal("real drift: 2021-01 model, replay 2023-03", "2021-01", None,
         "dataset drift raised and the drift alarm in ALARM within 24 h", real_drift),
    Goal("covariate shift: distance*1.2@day10", "2023-01+02", "distance*1.2@day10",
         "distance drift within 24 h of the change", covariate),
    Goal("concept drift: duration*1.25@day10", "2023-01+02", "duration*1.25@day10",
         "MAE alarm within 24 h; no input-drift alarm", concept),
)  # fmt: skip


@functools.cache
def model(name: str) -> ModelFiles:
    """Trained once per run (a kept profile would miss a change of the profile's format)."""
    train, valid = MODELS[name]
    print(f"bench replay: training the {name} model", file=sys.stderr, flush=True)
    return train_model([str(DATA / f) for f in train], str(DATA / valid), STATE / name)


def emit(metric: str, value: float, unit: str, note: str | None = None) -> None:
    figure = {"metric": metric, "value": round(value, 4), "unit": unit, **({"note": note} if note else {})}
    print(json.dumps(figure), flush=True)


def measure(goal: Goal) -> tuple[str, bool]:
    injections = [Injection.parse(goal.inject)] if goal.inject else []
    outcome = run_replay(build_traffic([str(DATA / REPLAY)], injections), model(goal.model))
    measured, met = goal.judge(outcome)
    key = goal.scenario.split(":")[0].replace(" ", "_")
    print(f"{goal.scenario}: {json.dumps(outcome.line)}", file=sys.stderr, flush=True)
    emit(f"replay_{key}_goal_met", float(met), "bool", f"{goal.goal} | measured: {measured}")
    emit(f"replay_{key}_dataset_drift_share", _drift_share(outcome), "share")
    emit(f"replay_{key}_month_wall_seconds", outcome.wall_seconds, "s")
    return measured, met


def main() -> None:
    rows = [(goal, *measure(goal)) for goal in GOALS]
    print(f"\n{'scenario':44} {'goal':70} met  measured", file=sys.stderr)
    for goal, measured, met in rows:
        print(f"{goal.scenario:44} {goal.goal:70} {'yes' if met else 'NO ':4} {measured}", file=sys.stderr)
    print(
        "(per-feature false-positive rates and the 1M-row drift: benchmarks/bench_monitor.py)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
