"""make rollout-demo's picture: each arm's MAE per pickup bucket, phases laid end to end."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

from infra.rollout_picture import MIN_RIDES, ArmPoint, bucket_maes, render_arms_svg

T0 = datetime(2023, 3, 6, 0, 0)


def points(phase: int, start: datetime, version: str, answered: bool, errors: list[float]) -> list[ArmPoint]:
    return [ArmPoint(phase, start + timedelta(minutes=i), version, answered, e) for i, e in enumerate(errors)]


def test_phases_are_laid_end_to_end_and_each_arm_has_its_bucket_mae() -> None:
    first = points(0, T0, "1", True, [2.0] * 10) + points(0, T0 + timedelta(hours=6), "1", True, [4.0] * 10)
    second = points(1, T0, "1", True, [3.0] * 10) + points(1, T0, "2", False, [1.0] * 10)
    series, bounds = bucket_maes(first + second)
    phase_hours = 6 + 9 / 60  # the first phase's pickups span 6 h 9 min
    assert bounds == [0.0, phase_hours, phase_hours + 9 / 60]
    assert series[("1", True)] == [(1.5, 2.0), (7.5, 4.0), (phase_hours + 1.5, 3.0)]
    assert series[("2", False)] == [(phase_hours + 1.5, 1.0)]


def test_a_bucket_with_too_few_rides_is_not_drawn() -> None:
    series, _ = bucket_maes(points(0, T0, "1", True, [1.0] * (MIN_RIDES - 1)))
    assert series == {}


def test_the_picture_is_svg_with_a_line_per_arm() -> None:
    drawn = points(0, T0, "1", True, [2.0] * 20) + points(0, T0, "2", False, [1.0] * 20)
    svg = ET.fromstring(render_arms_svg(drawn, ["shadow"], "t"))
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2 and "stroke-dasharray" in lines[1].attrib
