"""make rollout-demo's picture: each arm's MAE (minutes) per BUCKET of pickup time, phase after phase; a
solid line where the version answered the rides, dashed where it scored them beside without answering."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from infra.harness.svg import PALETTE, document, line, polyline, text

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 1400, 420, 60, 220, 40, 60
BUCKET = timedelta(hours=3)
MIN_RIDES = 5  # a bucket with fewer rides of an arm is not drawn: its MAE is noise


@dataclass(frozen=True)
class ArmPoint:
    phase: int
    pickup: datetime
    version: str
    answered: bool
    error: float  # |prediction - actual|, minutes


Series = dict[tuple[str, bool], list[tuple[float, float]]]


def bucket_maes(points: Sequence[ArmPoint]) -> tuple[Series, list[float]]:
    """(version, answered) -> [(hours from the first phase's start, MAE)], and where each phase starts."""
    starts: dict[int, datetime] = {}
    ends: dict[int, datetime] = {}
    for p in points:
        starts[p.phase] = min(starts.get(p.phase, p.pickup), p.pickup)
        ends[p.phase] = max(ends.get(p.phase, p.pickup), p.pickup)
    offsets, at = [], 0.0
    for phase in sorted(starts):
        offsets.append(at)
        at += (ends[phase] - starts[phase]) / timedelta(hours=1)
    offset = dict(zip(sorted(starts), offsets, strict=True))
    errors: dict[tuple[str, bool, int, int], list[float]] = defaultdict(list)
    for p in points:
        errors[(p.version, p.answered, p.phase, int((p.pickup - starts[p.phase]) / BUCKET))].append(p.error)
    series: Series = defaultdict(list)
    for (version, answered, phase, bucket), values in sorted(errors.items()):
        if len(values) >= MIN_RIDES:
            hours = offset[phase] + (bucket + 0.5) * BUCKET / timedelta(hours=1)
            series[(version, answered)].append((hours, float(np.mean(values))))
    return dict(series), [*offsets, at]


def render_arms_svg(points: Sequence[ArmPoint], phase_names: Sequence[str], title: str) -> str:
    series, bounds = bucket_maes(points)
    if not series:
        return document(600, 40, [text(10, 20, "no labelled rides")])
    span = max(bounds[-1], 1.0)
    peak = max(mae for values in series.values() for _, mae in values) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def xy(hours: float, mae: float) -> tuple[float, float]:
        return LEFT + plot_w * hours / span, TOP + plot_h * (1 - mae / peak)

    parts = [text(LEFT, 20, title, 13), line(LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h, "#000")]
    for tick in np.linspace(0, peak, 5):
        _, y = xy(0, tick)
        parts += [line(LEFT - 4, y, LEFT, y, "#000"), text(LEFT - 6, y + 3, f"{tick:.1f}", 9, "end")]
    parts.append(text(LEFT - 40, TOP - 8, "MAE (min)", 10))
    for k, (start, name) in enumerate(zip(bounds, phase_names, strict=False)):
        x, _ = xy(start, 0)
        parts.append(line(x, TOP, x, TOP + plot_h, "#999", ' stroke-dasharray="4 3"'))
        parts.append(text(x + 3, TOP + plot_h + 14 + 12 * (k % 3), f"{k + 1}. {name[:45]}", 9))
    versions = sorted({version for version, _ in series})
    for k, ((version, answered), values) in enumerate(sorted(series.items())):
        colour = PALETTE[versions.index(version) % len(PALETTE)]
        dash = "" if answered else ' stroke-dasharray="5 3"'
        parts.append(polyline([xy(h, m) for h, m in values], colour, f' stroke-width="1.5"{dash}'))
        label = f"v{version} {'answered' if answered else 'scored beside'}"
        y = TOP + 14 * k
        parts.append(line(WIDTH - RIGHT + 10, y, WIDTH - RIGHT + 30, y, colour, dash))
        parts.append(text(WIDTH - RIGHT + 34, y + 3, label, 10))
    return document(WIDTH, HEIGHT, parts)
