"""What a replay found: one row per monitor window, the summary, the JSON line of the Interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from infra.replay.alarms import AlarmHistory, Published
from trip_core.contracts import parse_utc

SCORE_KEYS = ("distance", "score")  # the report's drift figure of a column, the first one present


@dataclass(frozen=True)
class WindowRow:
    end: datetime
    evaluated_at: datetime
    n: int
    features: dict[str, tuple[bool, float | None]]  # name -> (drifted, score); empty without a verdict
    dataset_drift: bool | None  # None: no verdict (too few rides, or no version analysed)
    mae_ratio: float | None
    alarms: tuple[str, ...]  # in ALARM after this run

    @property
    def has_verdict(self) -> bool:
        return self.dataset_drift is not None


def _score(column: Mapping[str, Any]) -> float | None:
    return next((float(column[k]) for k in SCORE_KEYS if isinstance(column.get(k), int | float)), None)


def _quality_ratio(result: Mapping[str, Any]) -> float | None:
    quality = result.get("quality") or {}
    ratio = quality.get("mae_ratio")
    return float(ratio) if quality.get("published") and ratio is not None else None


def window_row(report: Mapping[str, Any], histories: Sequence[AlarmHistory]) -> WindowRow:
    """A drift report (lambda_monitor.service) as a row; with several versions, the worse verdicts."""
    analysed = [r for r in report["versions"].values() if r.get("status") == "ok"]
    features: dict[str, tuple[bool, float | None]] = {}
    for result in analysed:
        for name, column in result["drift"]["features"].items():
            drifted = bool(column["drifted"]) or features.get(name, (False, None))[0]
            features[name] = (drifted, _score(column))
    ratios = [r for r in (_quality_ratio(result) for result in analysed) if r is not None]
    evaluated_at = parse_utc(report["generated_at"])
    return WindowRow(
        end=parse_utc(report["window"]["end"]),
        evaluated_at=evaluated_at,
        n=int(report["prediction_count"]),
        features=features,
        dataset_drift=any(bool(r["drift"]["dataset_drift"]) for r in analysed) if analysed else None,
        mae_ratio=max(ratios) if ratios else None,
        alarms=tuple(h.rule.name for h in histories if h.in_alarm(evaluated_at)),
    )


def aggregate_values(points: Sequence[Published], metric: str) -> list[float]:
    """The values of a metric's aggregate (no dimensions): the series the alarms watch."""
    return [float(p.datum.value) for p in points if p.datum.name == metric and not p.datum.dimensions]


def interface_line(
    rows: Sequence[WindowRow],
    histories: Sequence[AlarmHistory],
    points: Sequence[Published],
    origin: datetime,
) -> dict[str, Any]:
    """The one JSON line of the issue's Interface; hours from `origin` (first ride, or the injection)."""
    ratios = aggregate_values(points, "MAERatio")
    alarms = {}
    for history in histories:
        first = history.first_alarm()
        hours = None if first is None else round((first - origin).total_seconds() / 3600, 2)
        alarms[history.rule.name] = {"reached_alarm": first is not None, "first_alarm_hours": hours}
    return {
        "windows": len(rows),
        "windows_with_verdict": sum(row.has_verdict for row in rows),
        "dataset_drift_windows": sum(bool(row.dataset_drift) for row in rows),
        "alarms": alarms,
        "mae_ratio_median": round(float(np.median(ratios)), 4) if ratios else None,
    }


def feature_names(rows: Sequence[WindowRow]) -> list[str]:
    return list(dict.fromkeys(name for row in rows for name in row.features))


def table(rows: Sequence[WindowRow]) -> list[str]:
    """Per window: end, n, each feature's score (`*` = drifted), dataset drift, MAE ratio, alarms."""
    names = feature_names(rows)
    head = f"{'window end (UTC)':20} {'n':>6} " + " ".join(f"{n[:13]:>14}" for n in names)
    lines = [head + f" {'dataset':>7} {'MAE ratio':>9}  alarms in ALARM"]
    for row in rows:
        cells = []
        for name in names:
            drifted, score = row.features.get(name, (False, None))
            cells.append(f"{('*' if drifted else '') + ('-' if score is None else f'{score:.4f}'):>14}")
        dataset = "-" if row.dataset_drift is None else ("DRIFT" if row.dataset_drift else "no")
        ratio = "-" if row.mae_ratio is None else f"{row.mae_ratio:.3f}"
        lines.append(
            f"{row.end:%Y-%m-%d %H:%M}     {row.n:>6} "
            + " ".join(cells)
            + f" {dataset:>7} {ratio:>9}  {', '.join(row.alarms)}"
        )
    return lines


def summary(
    rows: Sequence[WindowRow], histories: Sequence[AlarmHistory], counts: Mapping[str, int]
) -> list[str]:
    with_verdict = [row for row in rows if row.has_verdict]
    lines = [
        f"rides sent {counts['sent']}, predicted {counts['predicted']}, rejected {counts['rejected']}; "
        f"actuals reported {counts['actuals']}",
        f"windows {len(rows)}, with a verdict {len(with_verdict)}, dataset drift in "
        f"{sum(bool(r.dataset_drift) for r in rows)}",
    ]
    for name in feature_names(rows):
        drifted = sum(row.features[name][0] for row in with_verdict if name in row.features)
        lines.append(f"  {name}: drifted in {drifted} of {len(with_verdict)} windows with a verdict")
    for history in histories:
        alarm_runs = sum(state == "ALARM" for _, state in history.states)
        first = history.first_alarm()
        lines.append(
            f"alarm {history.rule.name}: in ALARM after {alarm_runs} of {len(history.states)} runs"
            + (f", first at {first:%Y-%m-%d %H:%M}" if first else "")
        )
    return lines
