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
hour apart give overlapping (correlated) trials: the trial count overstates the independent evidence
(about one independent trial per day of the months).

The rule's DAY_HETEROGENEITY is calibrated on these same months (day_effect_bound: the worst day-long
window's need); the decision_* rates are therefore in sample. The decision_leave_one_out_* rates judge
each month with the bound measured on the other months only: out of sample. decision_gate_*_real_heal_*
is the price: the two real models unblended, the better as the challenger (its gain is the month's,
not GAIN_GOOD; its per-ride gains spread as a heal's do), and how often the gate refuses it.

Prints JSON lines {"metric","value","unit","note"}. Fitted predictions are cached in .state/.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np

from lambda_retrain.config import RetrainConfig
from lambda_retrain.rollback import FINAL_LOOK
from training import decision
from training.decision import (
    DAY_HETEROGENEITY,
    GAIN_BAD,
    GAIN_GOOD,
    WRONG_PROMOTION,
    WRONG_REFUSAL,
    Outcome,
    cluster_mean_se,
    compare,
    quantiles,
)
from training.gate import EVAL_MARGIN

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".state" / "bench-decision"
# The holdout: HOLDOUT_FRACTION of the ~10k rows the loop gathers is about a day at ~2,000 labelled rides a
# day, two days at half that volume.
GATE_HOLDOUT_HOURS = (24, 48)
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
    better, worse = ranked(month)
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


def ranked(month: Scored) -> tuple[np.ndarray, np.ndarray]:
    """The two models' predictions, the better over the month first."""
    first, second = month.first, month.second
    return (first, second) if month_gain(second, first, month.target) >= 0 else (second, first)


def heal_rates(month: Scored, holdout_hours: int) -> Rates:
    """The two real models unblended: the better over the month as the challenger of the worse (a model
    of the recent month against an older one: their per-ride gains spread far wider than a blend's
    near the champion, and so does the day effect the rule allows for). Wrong: refused."""
    better, worse = ranked(month)
    wrong = trials = undecided = 0
    for lo, hi in hour_starts(month.pickup, holdout_hours):
        result = compare(worse[lo:hi], better[lo:hi], month.target[lo:hi], month.pickup[lo:hi])
        trials += 1
        undecided += not result.conclusive
        wrong += result.outcome != Outcome.BETTER
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


def window_gains(month: Scored, gain: float) -> np.ndarray:
    champion, challenger = truly(month, gain)
    return np.abs(champion - month.target) - np.abs(challenger - month.target)


def day_effect_needed(month: Scored, gain: float) -> np.ndarray:
    """For each day-long window, the smallest DAY_HETEROGENEITY with which its gain lies within the
    promotion-side t bound of the month's (training.decision takes the largest over the month pairs)."""
    gains = window_gains(month, gain)
    needed = []
    for lo, hi in hour_starts(month.pickup, 24):
        mean, se, hours = cluster_mean_se(gains[lo:hi], month.pickup[lo:hi].astype("datetime64[h]"))
        stray = abs(mean - gain) / quantiles(hours)[1]
        needed.append(np.sqrt(max(0.0, stray**2 - se**2)) / float(np.std(gains[lo:hi])))
    return np.array(needed)


def day_correlation(month: Scored, gain: float) -> float:
    """Lag-1 autocorrelation of the month's day-mean gains (why the day effect does not average out)."""
    gains = window_gains(month, gain)
    _, day = np.unique(month.pickup.astype("datetime64[D]"), return_inverse=True)
    means = np.bincount(day, weights=gains) / np.bincount(day)
    centred = means - means.mean()
    return float(np.sum(centred[1:] * centred[:-1]) / np.sum(centred**2))


def day_effect_bound(months: list[Scored]) -> float:
    return max(float(day_effect_needed(m, g).max()) for m in months for g in (GAIN_GOOD, GAIN_BAD))


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


def emit_value(metric: str, value: float, unit: str, note: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 4), "unit": unit, "note": note}))


def emit_day_effects(months: list[Scored]) -> None:
    for pair, month in zip(PAIRS, months, strict=True):
        for gain in (GAIN_GOOD, GAIN_BAD):
            note = f"{pair[0]}, models fitted on {pair[1]} and {pair[2]}, true gain {gain:+g} min"
            emit_value(
                f"decision_day_correlation_{pair[0]}_{gain:+g}", day_correlation(month, gain), "r", note
            )
            needed = float(day_effect_needed(month, gain).max())
            emit_value(f"decision_day_effect_bound_{pair[0]}_{gain:+g}", needed, "ratio", note)
    note = f"largest over the pairs; training.decision.DAY_HETEROGENEITY {DAY_HETEROGENEITY:g}"
    emit_value("decision_day_effect_bound", day_effect_bound(months), "ratio", note)


def emit_drift_penalties(months: list[Scored]) -> None:
    for pair, month in zip(PAIRS, months, strict=True):
        penalty = month_gain(month.second, month.first, month.target)
        note = f"MAE on {pair[0]}: a model of {pair[2]} minus one of {pair[1]} (EVAL_MARGIN {EVAL_MARGIN:g})"
        emit_value(f"decision_eval_drift_penalty_{pair[0]}", penalty, "min", note)


def emit_rates(months: list[Scored], prefix: str) -> None:
    """The gate at each holdout size and the rollback, both goals, summed over `months`."""
    for hours in GATE_HOLDOUT_HOURS:
        good = total([gate_rates(m, GAIN_GOOD, hours) for m in months])
        bad = total([gate_rates(m, GAIN_BAD, hours) for m in months])
        emit(f"{prefix}_gate_{hours}h_good_refused", good, WRONG_REFUSAL, f"{GAIN_GOOD:+g} min refused")
        emit(f"{prefix}_gate_{hours}h_bad_promoted", bad, WRONG_PROMOTION, f"{GAIN_BAD:+g} min promoted")
    good = total([rollback_rates(m, GAIN_GOOD) for m in months])
    bad = total([rollback_rates(m, GAIN_BAD) for m in months])
    emit(f"{prefix}_rollback_good_rolled_back", good, WRONG_REFUSAL, f"{GAIN_GOOD:+g} min rolled back")
    emit(f"{prefix}_rollback_bad_kept", bad, WRONG_PROMOTION, f"{GAIN_BAD:+g} min kept")


def emit_heals(months: list[Scored]) -> None:
    """Not a goal of the rule (the true gains differ by month): how often a real heal is refused."""
    for pair, month in zip(PAIRS, months, strict=True):
        better, worse = ranked(month)
        gain = month_gain(worse, better, month.target)
        for hours in GATE_HOLDOUT_HOURS:
            what = f"{pair[0]}: the better of models of {pair[1]}, {pair[2]} (gain {gain:+.3f} min) refused"
            emit(
                f"decision_gate_{hours}h_real_heal_refused_{pair[0]}",
                heal_rates(month, hours),
                WRONG_REFUSAL,
                what,
            )


def emit_leave_one_out(months: list[Scored]) -> None:
    """Each month judged by the rule with the day-effect bound of the other months only: the rates out
    of sample (the shipped DAY_HETEROGENEITY is calibrated on all of them)."""
    for index, pair in enumerate(PAIRS):
        others = [m for other, m in enumerate(months) if other != index]
        bound = day_effect_bound(others)
        emit_value(f"decision_leave_one_out_bound_{pair[0]}", bound, "ratio", "from the other pairs")
        with mock.patch.object(decision, "DAY_HETEROGENEITY", bound):
            emit_rates([months[index]], f"decision_leave_one_out_{pair[0]}")


def main() -> None:
    months = [cached_scored(*pair) for pair in PAIRS]
    emit_day_effects(months)
    emit_drift_penalties(months)
    emit_rates(months, "decision")
    emit_heals(months)
    emit_leave_one_out(months)


if __name__ == "__main__":
    main()
