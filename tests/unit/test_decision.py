"""training.decision: the cluster se, the thresholds' algebra, and the outcomes at the edges."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from training import decision
from training.decision import GAIN_BAD, GAIN_GOOD, MIN_HOURS, Outcome, cluster_mean_se, compare, se_max


def hourly(rows_per_hour: int, hours: int) -> np.ndarray:
    start = np.datetime64("2023-03-01T00:00:00")
    return start + (np.arange(rows_per_hour * hours) // rows_per_hour * 3600).astype("timedelta64[s]")


def test_cluster_se_by_hand() -> None:
    values = np.array([1.0, 3.0, 2.0, 6.0])
    clusters = np.array([0, 0, 1, 1])
    mean, se, hours = cluster_mean_se(values, clusters)
    residual_sums = np.array([1 - 3 + 3 - 3, 2 - 3 + 6 - 3])
    assert (mean, hours) == (3.0, 2)
    assert se == pytest.approx(np.sqrt(2 / 1 * np.sum(residual_sums**2) / 16))


def test_correlated_hours_widen_the_se_beyond_iid() -> None:
    """Gains shared within an hour: the cluster se sees it, an iid se would not."""
    rng = np.random.default_rng(0)
    pickup = hourly(50, 24)
    shared = np.repeat(rng.normal(0, 1, 24), 50)
    gains = shared + rng.normal(0, 1, len(pickup))
    _, se, _ = cluster_mean_se(gains, pickup.astype("datetime64[h]"))
    assert se > 2 * gains.std() / np.sqrt(len(gains))


def test_se_max_is_the_algebra_of_both_error_rates() -> None:
    q_r, q_p = stats.t.ppf(1 - decision.WRONG_REFUSAL, 23), stats.t.ppf(1 - decision.WRONG_PROMOTION, 23)
    limit = se_max(24)
    assert limit == pytest.approx((GAIN_GOOD - GAIN_BAD) / (q_r + q_p))
    # at se = se_max the two threshold terms meet: a GAIN_BAD challenger needs q_p se's of luck to pass
    assert GAIN_GOOD - q_r * limit == pytest.approx(GAIN_BAD + q_p * limit)


def _gains_of(
    gain: float, spread: float, pickup: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """champion, challenger, target with per-ride gains gain + noise."""
    rng = np.random.default_rng(seed)
    target = rng.uniform(5, 30, len(pickup))
    champion = target + 3.0
    challenger_error = np.clip(3.0 - gain + rng.normal(0, spread, len(pickup)), 0, None)
    return champion, target + challenger_error, target


@pytest.mark.parametrize(
    ("gain", "outcome"),
    # GAIN_BAD, not 0: between GAIN_BAD and GAIN_GOOD either outcome is within the rule's goals
    [(1.0, Outcome.BETTER), (-1.0, Outcome.NOT_BETTER), (GAIN_BAD, Outcome.NOT_BETTER)],
)
def test_outcomes_on_clear_cases(gain: float, outcome: Outcome) -> None:
    pickup = hourly(100, 24)
    result = compare(*_gains_of(gain, 0.5, pickup, 1), pickup)
    assert result.outcome == outcome and result.hours == 24 and result.rows == 2400
    assert result.decisive


def test_too_few_hours_is_not_enough_evidence() -> None:
    pickup = hourly(500, MIN_HOURS - 1)
    result = compare(*_gains_of(1.0, 0.5, pickup, 2), pickup)
    assert result.outcome == Outcome.NOT_ENOUGH_EVIDENCE and not result.decisive


def test_a_noisy_small_gain_is_not_decisive_but_the_promotion_side_stays_safe() -> None:
    pickup = hourly(20, 24)
    result = compare(*_gains_of(0.2, 8.0, pickup, 3), pickup)
    assert result.se > result.se_max and not result.conclusive
    assert result.threshold == pytest.approx(GAIN_BAD + result.quantiles[1] * result.se)


def test_a_challenger_predicting_nan_is_not_better() -> None:
    pickup = hourly(100, 24)
    champion, challenger, target = _gains_of(1.0, 0.5, pickup, 4)
    challenger[3] = np.nan
    assert compare(champion, challenger, target, pickup).outcome == Outcome.NOT_BETTER
