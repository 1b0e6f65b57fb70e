"""CanaryMAERatio (lambda_monitor/arms.py): the canary's captures told from a shadow's, judged against
the live model's answers to the same labelled rides."""

from __future__ import annotations

import pytest

from lambda_monitor.arms import canary_quality
from lambda_monitor.service import metrics_of
from trip_core.capture import CaptureBatch


def batch(
    version: str, ids: list[int | str], answers: list[float], paired: tuple[str, list[float | None]] | None
) -> CaptureBatch:
    n = len(ids)
    return CaptureBatch(
        "m", version, "2023-03-06T15:00:00Z", [f"p{i}" for i in ids], ids, ["2023-03-06T10:00:00"] * n,
        [130] * n, [205] * n, [3.0] * n, answers,
        paired_version=None if paired is None else paired[0],
        paired_prediction=None if paired is None else paired[1],
    )  # fmt: skip


ACTUALS = {str(i): 10.0 for i in range(20)} | {"19": 500.0}  # 19: outside the target's domain


def test_the_canary_is_judged_against_the_live_answers_to_its_own_rides() -> None:
    live = batch("1", [0, 1, 2], [10.0, 10.0, 10.0], ("3", [12.0, 12.0, 12.0]))  # live, shadow 3 beside
    canary = batch(
        "2", [10, 11, 12, 13, 19], [13.0, 13.0, 13.0, 13.0, 13.0], ("1", [11.0, 11.0, 11.0, None, 9.0])
    )
    quality = canary_quality([live, canary], ACTUALS, min_actuals=3)
    assert quality is not None
    assert (quality["canary"], quality["live"], quality["rides"]) == (["2"], ["1"], 3)
    assert quality["canary_mae"] == pytest.approx(3.0) and quality["live_mae"] == pytest.approx(1.0)
    assert quality["mae_ratio"] == pytest.approx(3.0)
    assert canary_quality([live, canary], ACTUALS, min_actuals=4)["mae_ratio"] is None  # type: ignore[index]


def test_a_shadow_alone_is_no_canary() -> None:
    live = batch("1", [0, 1, 2], [10.0, 10.0, 10.0], ("3", [12.0, 12.0, 12.0]))
    assert canary_quality([live], ACTUALS, min_actuals=1) is None


def test_the_ratio_is_published_when_there_is_one() -> None:
    report = {
        "errors": 0, "generated_at": "2023-03-07T06:00:00Z",
        "metrics": {"published": True, "timestamp": "2023-03-07T05:00:00Z"},
        "prediction_count": 8, "rejected": {"share": None},
        "actuals": {"rejected": {}, "conflicting_rides": 0},
        "versions": {}, "canary": {"mae_ratio": 1.5},
    }  # fmt: skip
    assert [(d.name, d.value) for d in metrics_of(report) if d.name == "CanaryMAERatio"] == [
        ("CanaryMAERatio", 1.5)
    ]
    report["canary"] = None
    assert not [d for d in metrics_of(report) if d.name == "CanaryMAERatio"]
