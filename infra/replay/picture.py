"""The replay as one SVG a person opens: per-feature drift scores over simulated time (drifted verdicts
marked), the dataset verdict per window, the MAE ratio with its alarm threshold, and one lane per alarm with
its ALARM periods; the injection time, if any, as a dashed line. Plain SVG text, no plotting library."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from infra.harness.svg import PALETTE, SVG_NS, line, rect, text
from infra.replay.alarms import ALARM, AlarmHistory
from infra.replay.results import WindowRow, feature_names

WIDTH, LEFT, RIGHT = 1400, 250, 20
PLOT_WIDTH = WIDTH - LEFT - RIGHT
SCORES_HEIGHT, RATIO_HEIGHT, STRIP, LANE = 240, 120, 16, 16
DRIFT, CALM, NONE, ALARM_RED = "#d62728", "#9ecf9e", "#dddddd", "#d62728"


class Axis:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.span = start, max((end - start).total_seconds(), 1.0)

    def x(self, moment: datetime) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (moment - self.start).total_seconds() / self.span


def _runs(
    rows: Sequence[WindowRow], get: Callable[[WindowRow], float | None]
) -> list[list[tuple[WindowRow, float]]]:
    """Consecutive windows that have a value: a line never bridges windows without one."""
    runs: list[list[tuple[WindowRow, float]]] = [[]]
    for row in rows:
        value = get(row)
        if value is None:
            runs.append([])
        else:
            runs[-1].append((row, value))
    return [run for run in runs if run]


def _lines(
    rows: Sequence[WindowRow],
    axis: Axis,
    top: float,
    height: float,
    series: dict[str, Callable[[WindowRow], float | None]],
    peak_at_least: float = 1e-9,
) -> list[str]:
    values = [v for get in series.values() for row in rows if (v := get(row)) is not None]
    peak = max([*values, peak_at_least])
    parts = [
        rect(LEFT, top, PLOT_WIDTH, height, "none", ' stroke="#999"'),
        text(LEFT - 4, top + 10, f"{peak:.3g}", 9, "end"),
        text(LEFT - 4, top + height, "0", 9, "end"),
    ]
    for k, (name, get) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        for run in _runs(rows, get):
            coords = " ".join(
                f"{axis.x(row.end):.1f},{top + height * (1 - value / peak):.1f}" for row, value in run
            )
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{coords}"/>')
            if len(run) == 1:  # a lone window's value: a dot, a one-point line is not drawn
                x, y = coords.split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="1.5" fill="{colour}"/>')
        parts.append(rect(8, top + 4 + k * 14, 10, 10, colour))
        parts.append(text(22, top + 13 + k * 14, name, 10))
    return parts


def _score_of(name: str) -> Callable[[WindowRow], float | None]:
    def score(row: WindowRow) -> float | None:
        return row.features.get(name, (False, None))[1]

    return score


def _drift_marks(rows: Sequence[WindowRow], axis: Axis, top: float, height: float) -> list[str]:
    names = feature_names(rows)
    peak = max([s for row in rows for _, s in row.features.values() if s is not None] + [1e-9])
    return [
        f'<circle cx="{axis.x(row.end):.1f}" cy="{top + height * (1 - (score or 0) / peak):.1f}" r="2.2" '
        f'fill="{DRIFT}"><title>{html.escape(name)} drifted, window end {row.end:%m-%d %H}h</title></circle>'
        for row in rows
        for name in names
        for drifted, score in [row.features.get(name, (False, None))]
        if drifted
    ]


def _cells(rows: Sequence[WindowRow], axis: Axis, top: float) -> list[str]:
    step = (WIDTH - LEFT - RIGHT) / max(len(rows), 1)
    parts = [text(LEFT - 4, top + 12, "dataset drift", 10, "end")]
    for row in rows:
        colour = NONE if row.dataset_drift is None else (DRIFT if row.dataset_drift else CALM)
        parts.append(rect(axis.x(row.end) - step / 2, top, step, STRIP, colour))
    return parts


def _alarm_lane(history: AlarmHistory, axis: Axis, top: float, step: timedelta) -> list[str]:
    parts = [
        text(LEFT - 4, top + 12, history.rule.name, 10, "end"),
        rect(LEFT, top, PLOT_WIDTH, LANE - 2, "#f4f4f4"),
    ]
    for at, state in history.states:
        if state == ALARM:
            x0, x1 = axis.x(at - step), axis.x(at)
            parts.append(rect(x0, top, max(x1 - x0, 1), LANE - 2, ALARM_RED))
    return parts


def _day_ticks(axis: Axis, start: datetime, end: datetime, top: float, bottom: float) -> list[str]:
    parts, day = [], start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    every = max(1, (end - start).days // 15)
    while day <= end:
        x = axis.x(day)
        parts.append(line(x, top, x, bottom, "#eee"))
        if (day - start).days % every == 0:
            parts.append(text(x, bottom + 12, f"{day:%m-%d}", 9, "middle"))
        day += timedelta(days=1)
    return parts


def render_svg(
    rows: Sequence[WindowRow],
    histories: Sequence[AlarmHistory],
    step: timedelta,
    ratio_threshold: float | None,
    injected_at: datetime | None,
    title: str,
) -> str:
    if not rows:
        return f'<svg xmlns="{SVG_NS}" width="600" height="40">{text(10, 20, "no windows")}</svg>'
    axis = Axis(rows[0].end, rows[-1].end)
    names = feature_names(rows)
    scores = {name: _score_of(name) for name in names}
    y_ratio = 30 + SCORES_HEIGHT + STRIP + 20
    y_lanes = y_ratio + RATIO_HEIGHT + 12
    height = y_lanes + LANE * len(histories) + 30
    parts = [
        f'<svg xmlns="{SVG_NS}" width="{WIDTH}" height="{height}" font-family="sans-serif">',
        '<rect width="100%" height="100%" fill="white"/>',
        text(LEFT, 18, title, 13),
        *_day_ticks(axis, rows[0].end, rows[-1].end, 30, height - 30),
    ]
    parts += _lines(rows, axis, 30, SCORES_HEIGHT, scores) + _drift_marks(rows, axis, 30, SCORES_HEIGHT)
    parts += _cells(rows, axis, 30 + SCORES_HEIGHT + 8)
    ratios: dict[str, Callable[[WindowRow], float | None]] = {"MAE ratio": lambda row: row.mae_ratio}
    threshold = ratio_threshold or 0.0
    parts += _lines(rows, axis, y_ratio, RATIO_HEIGHT, ratios, peak_at_least=threshold * 1.2)
    if ratio_threshold is not None:
        peak = max([r.mae_ratio for r in rows if r.mae_ratio is not None] + [threshold * 1.2])
        y = y_ratio + RATIO_HEIGHT * (1 - threshold / peak)
        parts.append(line(LEFT, y, WIDTH - RIGHT, y, DRIFT, ' stroke-dasharray="4 3"'))
        parts.append(text(LEFT - 4, y + 3, f"alarm {threshold:g}", 9, "end"))
    for k, history in enumerate(histories):
        parts += _alarm_lane(history, axis, y_lanes + k * LANE, step)
    if injected_at is not None:
        x = axis.x(injected_at)
        parts.append(line(x, 24, x, height - 30, "#000", ' stroke-dasharray="6 4"'))
        parts.append(text(x + 3, 28, "injection", 10))
    parts.append("</svg>")
    return "\n".join(parts)
