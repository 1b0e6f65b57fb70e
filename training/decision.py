"""The one decision rule of the promotion gate and the rollback check: is the challenger better than the
champion, judged on the same rides?

The metric is the per-ride absolute error (MAE, minutes). The gain of ride i is
d_i = |e_champion_i| - |e_challenger_i|; D_hat = mean(d) > 0 means the challenger is better there.

Its uncertainty has two parts. Rides picked up in the same hour share traffic and weather, so the
sampling error is cluster-robust over pickup-hour clusters (CR1, Student-t with hours - 1 degrees of
freedom). And the question is the gain on the traffic to come, not on this window's rides: days differ
(weekday, weather, a public holiday), and a window's gain differs from the month's by a day effect that no
window of a day or two can measure. se = sqrt(se_hours^2 + tau^2), tau = DAY_HETEROGENEITY * sd(d).

tau does not shrink over the days a window covers. Consecutive days' effects are positively correlated
(benchmarks/bench_decision.py, "day_correlation"); with an AR(1) correlation rho >= 0, the day effect of a
mean over k days has variance tau^2 * (1 + 2 * sum_j (1 - j/k) rho^j) / k <= tau^2, equal at rho = 1, and a
window of a few days cannot estimate rho: the bound is taken. And the day effect is heavy-tailed (a holiday
or a snowstorm favours a model of light traffic far beyond a typical day's spread), so DAY_HETEROGENEITY is
not its sd but its worst case on real months: the smallest share of sd(d) with which every day-long window
of the benchmark's month pairs has its gain within the promotion-side t bound of the month's
(bench_decision "day_effect_bound"; its "leave_one_out" figures judge each month with the bound of the
others, so the rates are stated out of sample).

The goals (issue 13): a challenger truly GAIN_GOOD better is wrongly refused (or rolled back) with
probability <= WRONG_REFUSAL; one truly GAIN_BAD worse is promoted (or kept) with probability
<= WRONG_PROMOTION. With T = (D_hat - D) / se ~ t(hours - 1), q_r = t(1 - WRONG_REFUSAL),
q_p = t(1 - WRONG_PROMOTION):

  passes  iff  D_hat >= threshold = max(GAIN_GOOD - q_r * se, GAIN_BAD + q_p * se)
    at D = GAIN_BAD:   P(pass)   <= P(T >= q_p) = WRONG_PROMOTION, whatever se (less for lower D);
    at D = GAIN_GOOD:  P(refuse) =  P(T < -q_r) = WRONG_REFUSAL as long as the first term is the max,
                       i.e. se <= se_max = (GAIN_GOOD - GAIN_BAD) / (q_r + q_p): the comparison is
                       "conclusive". With a larger se the promotion side stays safe and only a
                       challenger barely GAIN_GOOD better may be refused more often; a much better one
                       (a model adapted to drift) still passes.
Fewer than MIN_HOURS pickup hours: "not enough evidence", whatever the figures (the se itself is then
unreliable). Between GAIN_BAD and GAIN_GOOD either answer is acceptable.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

GAIN_GOOD = 0.1  # minutes of MAE: a challenger at least this much better must pass
GAIN_BAD = -0.3  # minutes of MAE: a challenger at least this much worse must not
WRONG_REFUSAL = 0.02  # the largest accepted chance of refusing (rolling back) a GAIN_GOOD challenger
WRONG_PROMOTION = 0.01  # the largest accepted chance of promoting (keeping) a GAIN_BAD challenger
# Fewer pickup hours than this and the cluster se is too unreliable to decide on, whatever its value.
MIN_HOURS = 12
# The day effect's worst case as a share of the per-ride gains' sd: bench_decision's day_effect_bound over
# all its month pairs, rounded up (the module docstring says why a worst case, not an sd).
DAY_HETEROGENEITY = 0.094


class Outcome(StrEnum):
    BETTER = "better"  # the challenger passes
    NOT_BETTER = "not better"  # it does not
    NOT_ENOUGH_EVIDENCE = "not enough evidence"  # too few pickup hours to judge


@dataclass(frozen=True)
class Comparison:
    """Champion vs challenger on the same rides."""

    outcome: Outcome
    gain: float  # D_hat, minutes of MAE the challenger gains (negative: worse)
    se: float  # its standard error (pickup-hour clusters and the day effect)
    se_max: float  # the largest se with which both error rates hold, for this many hours
    threshold: float  # the gain the challenger needs
    rows: int
    hours: int
    champion_mae: float
    challenger_mae: float
    quantiles: tuple[float, float]  # t(1 - WRONG_REFUSAL), t(1 - WRONG_PROMOTION) for this many hours

    @property
    def conclusive(self) -> bool:
        """Both error rates hold: the se is small enough (and the hours enough) to judge either way."""
        return self.outcome != Outcome.NOT_ENOUGH_EVIDENCE and self.se <= self.se_max

    @property
    def decisive(self) -> bool:
        """Conclusive, or beyond the indifference zone even at the far end of its interval (worse than
        GAIN_BAD at its optimistic bound, or better than GAIN_GOOD at its pessimistic one): a check
        that waits for more rides would only confirm it."""
        if self.outcome == Outcome.NOT_ENOUGH_EVIDENCE:
            return False
        clearly_worse = self.gain + self.quantiles[0] * self.se < GAIN_BAD
        clearly_better = self.gain - self.quantiles[1] * self.se > GAIN_GOOD
        return self.conclusive or clearly_worse or clearly_better

    def summary(self) -> str:
        return (
            f"MAE {self.challenger_mae:.3f} vs champion {self.champion_mae:.3f}: gain {self.gain:+.3f} min"
            f" (se {self.se:.3f}, needs >= {self.threshold:+.3f}; conclusive when se <= {self.se_max:.3f};"
            f" {self.rows} rides in {self.hours} pickup hours)"
        )

    def figures(self) -> dict[str, float | int | str | bool]:
        return {
            "outcome": str(self.outcome),
            "conclusive": self.conclusive,
            "decisive": self.decisive,
            "gain": self.gain,
            "se": self.se,
            "se_max": self.se_max,
            "threshold": self.threshold,
            "rows": self.rows,
            "hours": self.hours,
            "champion_mae": self.champion_mae,
            "challenger_mae": self.challenger_mae,
        }


def quantiles(hours: int) -> tuple[float, float]:
    """t(1 - WRONG_REFUSAL) and t(1 - WRONG_PROMOTION) for a comparison over `hours` pickup-hour clusters."""
    dof = max(hours - 1, 1)
    return float(stats.t.ppf(1 - WRONG_REFUSAL, dof)), float(stats.t.ppf(1 - WRONG_PROMOTION, dof))


def se_max(hours: int) -> float:
    """The largest standard error with which both error rates hold, for `hours` clusters."""
    return (GAIN_GOOD - GAIN_BAD) / sum(quantiles(hours))


def cluster_mean_se(values: np.ndarray, clusters: np.ndarray) -> tuple[float, float, int]:
    """Mean of `values`, its CR1 cluster-robust standard error, and the number of clusters."""
    _, index = np.unique(clusters, return_inverse=True)
    hours = int(index.max()) + 1 if len(index) else 0
    mean = float(np.mean(values)) if len(values) else float("nan")
    if hours < 2 or not np.isfinite(mean):
        return mean, float("inf"), hours
    sums = np.bincount(index, weights=values - mean, minlength=hours)
    variance = hours / (hours - 1) * float(np.sum(sums**2)) / len(values) ** 2
    return mean, float(np.sqrt(variance)), hours


def day_effect(spread: float) -> float:
    """The day effect's size in a window's mean gain, whatever the days the window covers (the module
    docstring: consecutive days' effects are correlated, so they do not average out)."""
    return DAY_HETEROGENEITY * spread


def compare(
    champion_pred: np.ndarray, challenger_pred: np.ndarray, target: np.ndarray, pickup: np.ndarray
) -> Comparison:
    """The rule on one set of rides; `pickup` (datetime64) gives each ride's pickup-hour cluster."""
    champion_error = np.abs(np.asarray(champion_pred, np.float64) - target)
    challenger_error = np.abs(np.asarray(challenger_pred, np.float64) - target)
    gains = champion_error - challenger_error
    if not np.isfinite(gains).all():  # a prediction that is not a number: judged as infinitely wrong
        gains = np.where(np.isfinite(gains), gains, -np.inf)
    gain, se_hours, hours = cluster_mean_se(gains, np.asarray(pickup).astype("datetime64[h]"))
    spread = float(np.std(gains)) if np.isfinite(gain) else float("inf")
    se = float(np.hypot(se_hours, day_effect(spread)))
    q_refusal, q_promotion = quantiles(hours)
    threshold = max(GAIN_GOOD - q_refusal * se, GAIN_BAD + q_promotion * se)
    if gain == -np.inf:
        outcome = Outcome.NOT_BETTER
    elif hours < MIN_HOURS or not np.isfinite(gain):
        outcome = Outcome.NOT_ENOUGH_EVIDENCE
    else:
        outcome = Outcome.BETTER if gain >= threshold else Outcome.NOT_BETTER
    return Comparison(
        outcome,
        gain,
        se,
        se_max(hours),
        threshold,
        len(gains),
        hours,
        float(np.mean(champion_error)) if len(gains) else float("nan"),
        float(np.mean(challenger_error)) if len(gains) else float("nan"),
        (q_refusal, q_promotion),
    )
