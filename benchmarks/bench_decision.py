"""The decision rule's error rates (training.decision), simulated on real months.

Real models, fitted by the training code on one month, predict a later month. A challenger "truly"
GAIN_GOOD better (or GAIN_BAD worse) than the champion is a blend of two of them,
challenger = champion + lam * (other - champion), lam chosen so its MAE gain over the WHOLE month is
exactly that. Trials are contiguous, time-ordered windows of the month (one per start hour) at the sizes
the loop really sees, judged by training.decision.compare:
  gate      the holdout: the last GATE_HOLDOUT_HOURS of rides before the retrain;
  rollback  hourly checks after a promotion, as lambda_retrain.rollback judges: the first decisive
            check decides, else the first in the window's final look (later checks do not re-test).
Every refusal of a good challenger counts as wrong, whatever its reason. Start hours one
hour apart give overlapping (correlated) trials: the trial count overstates the independent evidence.

Prints JSON lines {"metric","value","unit","note"}. Fitted predictions are cached in .state/.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lambda_retrain.config import RetrainConfig
from lambda_retrain.rollback import FINAL_LOOK
from training.decision import (
    GAIN_BAD,
    GAIN_GOOD,
    WRONG_PROMOTION,
    WRONG_REFUSAL,
    Outcome,
    cluster_mean_se,
    compare,
)
from training.gate import EVAL_MARGIN

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".state" / "bench-decision"
GATE_HOLDOUT_HOURS = (24, 48)  # the holdout at ~2,000 labelled rides a day: 1 and 2 days of rides
ROLLBACK_WINDOW_HOURS = int(RetrainConfig.rollback_window_hours)
FINAL_LOOK_HOURS = ROLLBACK_WINDOW_HOURS - int(FINAL_LOOK.total_seconds() // 3600)
# (test month, champion-side model, other model): each a month the training code fits on
PAIRS = (
    ("2021-02", "2021-01", "2023-01"),
    ("2022-02", "2022-01", "2021-01"),
    ("2023-02", "2023-01", "2021-01"),
    ("2023-03", "2023-02", "2021-02"),
)


@dataclass(frozen=True)
class Scored:
    """One month's rides in pickup order, with two real models' predictions."""

    pickup: np.ndarray  # datetime64[s]
    target: np.ndarray
    first: np.ndarray
    second: np.ndarray


@dataclass(frozen=True)
class Rates:
    wrong: int
    trials: int
    inconclusive: int  # gate: decided with se > se_max; rollback: decided at the final look

    @property
    def rate(self) -> float:
        return self.wrong / self.trials if self.trials else float("nan")


def month_file(month: str) -> str:
    return str(ROOT / "data" / f"green_tripdata_{month}.parquet")


def month_rows(month: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, target and pickup of a month, in pickup order (training.data's filtering)."""
    from training import data

    frame = data.load_month(month_file(month)).frame.sort_values(data.PICKUP, kind="stable")
    pickup = frame[data.PICKUP].to_numpy().astype("datetime64[s]")
    return data.frame_features(frame), frame["duration"].to_numpy(np.float64), pickup


def fitted_predictions(train_month: str, features: np.ndarray, max_iter: int, rows: int | None) -> np.ndarray:
    from training.model import ModelParams, fit, predict

    train_features, train_target, _ = month_rows(train_month)
    keep = np.random.default_rng(0).permutation(len(train_target))[:rows]
    return predict(fit(train_features[keep], train_target[keep], ModelParams(max_iter=max_iter)), features)


def scored(month: str, first: str, second: str, max_iter: int = 500, train_rows: int | None = None) -> Scored:
    """`month` scored by models fitted on `first` and `second` (on `train_rows` of each, default all)."""
    features, target, pickup = month_rows(month)
    preds = [fitted_predictions(m, features, max_iter, train_rows) for m in (first, second)]
    return Scored(pickup, target, preds[0], preds[1])


def cached_scored(month: str, first: str, second: str) -> Scored:
    path = CACHE / f"{month}_{first}_{second}.npz"
    if not path.exists():
        print(f"bench decision: fitting {first} and {second} for {month}", file=sys.stderr, flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = scored(month, first, second)
        np.savez(path, pickup=fresh.pickup, target=fresh.target, first=fresh.first, second=fresh.second)
    with np.load(path) as cached:
        return Scored(cached["pickup"], cached["target"], cached["first"], cached["second"])


def month_gain(champion: np.ndarray, challenger: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.abs(champion - target)) - np.mean(np.abs(challenger - target)))


def blend(champion: np.ndarray, other: np.ndarray, target: np.ndarray, gain: float) -> np.ndarray:
    """champion + lam * (other - champion) whose whole-month gain over the champion is `gain`."""

    def gain_at(lam: float) -> float:
        return month_gain(champion, champion + lam * (other - champion), target)

    high = 1.0
    while (gain_at(high) < gain) if gain > 0 else (gain_at(high) > gain):
        high *= 2
        if high > 64:
            raise ValueError(f"no blend of these models gains {gain:+g} min over the month")
    low = 0.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if (gain_at(mid) < gain) == (gain > 0) else (low, mid)
    return champion + high * (other - champion)


def truly(month: Scored, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """(champion, challenger) predictions, the challenger exactly `gain` min of MAE better over the
    month: a better challenger moves from the worse model towards the better, a worse one away."""
    better, worse = sorted(
        (month.first, month.second), key=lambda p: float(np.mean(np.abs(p - month.target)))
    )
    champion, other = (worse, better) if gain > 0 else (better, worse)
    return champion, blend(champion, other, month.target, gain)


def hour_starts(pickup: np.ndarray, span_hours: int, step_hours: int = 1) -> Iterator[tuple[int, int]]:
    """(first row, end row) of each window of `span_hours` starting every `step_hours` of the month."""
    hours = pickup.astype("datetime64[h]")
    first, last = hours[0], hours[-1]
    step = np.timedelta64(step_hours, "h")
    for start in np.arange(first, last - np.timedelta64(span_hours - 1, "h"), step):
        yield int(np.searchsorted(hours, start)), int(np.searchsorted(hours, start + span_hours))


def gate_rates(month: Scored, gain: float, holdout_hours: int, step_hours: int = 1) -> Rates:
    champion, challenger = truly(month, gain)
    wrong = trials = undecided = 0
    for lo, hi in hour_starts(month.pickup, holdout_hours, step_hours):
        result = compare(champion[lo:hi], challenger[lo:hi], month.target[lo:hi], month.pickup[lo:hi])
        trials += 1
        undecided += not result.conclusive
        wrong += (result.outcome != Outcome.BETTER) if gain > 0 else (result.outcome == Outcome.BETTER)
    return Rates(wrong, trials, undecided)


def rollback_keeps(champion: np.ndarray, challenger: np.ndarray, month: Scored, lo: int) -> tuple[bool, bool]:
    """(kept, decisive) for a promotion at row `lo`, as lambda_retrain.rollback judges it: hourly
    checks, the first decisive one decides, else the first in the window's FINAL_LOOK."""
    hours = month.pickup.astype("datetime64[h]")
    for checked in range(1, FINAL_LOOK_HOURS + 1):
        hi = int(np.searchsorted(hours, hours[lo] + checked))
        rows = slice(lo, hi)
        result = compare(champion[rows], challenger[rows], month.target[rows], month.pickup[rows])
        final = checked == FINAL_LOOK_HOURS and result.outcome != Outcome.NOT_ENOUGH_EVIDENCE
        if result.decisive or final:
            return result.outcome == Outcome.BETTER, result.decisive
    return True, False


def rollback_rates(month: Scored, gain: float, step_hours: int = 1) -> Rates:
    champion, challenger = truly(month, gain)
    wrong = trials = undecided = 0
    for lo, _ in hour_starts(month.pickup, ROLLBACK_WINDOW_HOURS, step_hours):
        kept, decisive = rollback_keeps(champion, challenger, month, lo)
        trials += 1
        undecided += not decisive
        wrong += (not kept) if gain > 0 else kept
    return Rates(wrong, trials, undecided)


def day_heterogeneity(month: Scored, gain: float) -> float:
    """The day effect's sd over the per-ride gains' sd: how far one day's gain strays from the month's
    beyond what its pickup-hour se explains (training.decision.DAY_HETEROGENEITY is its maximum)."""
    champion, challenger = truly(month, gain)
    gains = np.abs(champion - month.target) - np.abs(challenger - month.target)
    strays, variances, spreads = [], [], []
    for lo, hi in hour_starts(month.pickup, 24):
        mean, se, _ = cluster_mean_se(gains[lo:hi], month.pickup[lo:hi].astype("datetime64[h]"))
        strays.append((mean - gain) ** 2)
        variances.append(se**2)
        spreads.append(float(np.std(gains[lo:hi])))
    excess = float(np.mean(strays)) - float(np.mean(variances))
    return float(np.sqrt(max(0.0, excess)) / np.mean(spreads))


def total(rates: list[Rates]) -> Rates:
    return Rates(
        sum(r.wrong for r in rates), sum(r.trials for r in rates), sum(r.inconclusive for r in rates)
    )


def emit(metric: str, rates: Rates, goal: float, what: str) -> None:
    note = (
        f"{what}: {rates.wrong} of {rates.trials} trials (goal <= {goal:.0%});"
        f" {rates.inconclusive} inconclusive (gate: se > se_max; rollback: judged at the final look)"
    )
    print(json.dumps({"metric": metric, "value": round(rates.rate, 4), "unit": "share", "note": note}))


def main() -> None:
    months = [cached_scored(*pair) for pair in PAIRS]
    for pair, month in zip(PAIRS, months, strict=True):
        for gain in (GAIN_GOOD, GAIN_BAD):
            ratio = day_heterogeneity(month, gain)
            note = f"{pair[0]}, models fitted on {pair[1]} and {pair[2]}, true gain {gain:+g} min"
            print(
                json.dumps(
                    {
                        "metric": f"decision_day_heterogeneity_{pair[0]}_{gain:+g}",
                        "value": round(ratio, 4),
                        "unit": "ratio",
                        "note": note,
                    }
                )
            )
    for pair, month in zip(PAIRS, months, strict=True):
        penalty = month_gain(month.second, month.first, month.target)
        note = f"MAE on {pair[0]}: a model of {pair[2]} minus one of {pair[1]} (EVAL_MARGIN {EVAL_MARGIN:g})"
        print(
            json.dumps(
                {
                    "metric": f"decision_eval_drift_penalty_{pair[0]}",
                    "value": round(penalty, 4),
                    "unit": "min",
                    "note": note,
                }
            )
        )
    for hours in GATE_HOLDOUT_HOURS:
        good = total([gate_rates(m, GAIN_GOOD, hours) for m in months])
        bad = total([gate_rates(m, GAIN_BAD, hours) for m in months])
        emit(f"decision_gate_{hours}h_good_refused", good, WRONG_REFUSAL, f"{GAIN_GOOD:+g} min refused")
        emit(f"decision_gate_{hours}h_bad_promoted", bad, WRONG_PROMOTION, f"{GAIN_BAD:+g} min promoted")
    good = total([rollback_rates(m, GAIN_GOOD) for m in months])
    bad = total([rollback_rates(m, GAIN_BAD) for m in months])
    emit("decision_rollback_good_rolled_back", good, WRONG_REFUSAL, f"{GAIN_GOOD:+g} min rolled back")
    emit("decision_rollback_bad_kept", bad, WRONG_PROMOTION, f"{GAIN_BAD:+g} min kept")


if __name__ == "__main__":
    main()
