"""The arms of a traffic plan in a window (trip_core.plan): a capture with a paired answer is either

  a shadow's  the live model answered, the shadow's answer is paired: the shadow answers no ride itself;
  a canary's  the canary answered, the live model's answer is paired: the live model answers rides too.

So a capture is a canary's when its paired version answered rides of the window itself, and its pair of
versions was captured the other way round no later: a shadow that moved on to its canary leaves its
shadow captures (live answered, the shadow paired) in the window, and they are not the canary's. The
canary's MAE over the live model's MAE on the same labelled rides is CanaryMAERatio (its alarm stops the
canary at once: template.yaml CanaryMAERatioAlarm, the retrain function's CANARY_ALARMS).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trip_core.capture import CaptureBatch
from trip_core.event_window import in_target_domain, join_actuals


def canary_quality(
    batches: Sequence[CaptureBatch], durations: dict[str, float], min_actuals: int
) -> dict[str, Any] | None:
    """{canary, live, rides, canary_mae, live_mae, mae_ratio (None under min_actuals)}, or None without a
    canary in the window."""
    answering = {b.model_version for b in batches}
    current = _current_pairings(batches)
    canary = [
        b for b in batches if b.paired_version in answering and (b.model_version, b.paired_version) in current
    ]
    if not canary:
        return None
    served, paired, truth = [], [], []
    for batch in canary:
        actual = join_actuals(batch.ride_id, durations)
        for i in np.flatnonzero(in_target_domain(actual)).tolist():
            live_answer = (batch.paired_prediction or [])[i]
            if live_answer is not None:
                served.append(batch.prediction[i])
                paired.append(live_answer)
                truth.append(actual[i])
    target = np.array(truth, dtype=np.float64)
    canary_mae = float(np.mean(np.abs(np.array(served) - target))) if truth else None
    live_mae = float(np.mean(np.abs(np.array(paired) - target))) if truth else None
    ratio = None
    if canary_mae is not None and live_mae and len(truth) >= min_actuals:
        ratio = canary_mae / live_mae
    return {
        "canary": sorted({b.model_version for b in canary}),
        "live": sorted({str(b.paired_version) for b in canary}),
        "rides": len(truth),
        "canary_mae": canary_mae,
        "live_mae": live_mae,
        "mae_ratio": ratio,
        "min_actuals": min_actuals,
    }


def _current_pairings(batches: Sequence[CaptureBatch]) -> set[tuple[str, str]]:
    """(answered, paired) of the latest capture of each pair of versions."""
    latest: dict[frozenset[str], CaptureBatch] = {}
    for b in batches:
        if b.paired_version is None:
            continue
        pair = frozenset((b.model_version, b.paired_version))
        if pair not in latest or b.captured_at >= latest[pair].captured_at:
            latest[pair] = b
    return {(b.model_version, str(b.paired_version)) for b in latest.values()}
