"""The decision rule's goals (issue 13), on a smaller simulation than benchmarks/bench_decision.py: two
real models (fitted on 2021-01 and 2023-01 samples) predict 2023-02; blends of them are truly GAIN_GOOD
better or GAIN_BAD worse over the whole month; trials are 24-hour windows (a gate holdout at ~2,000 rides
a day) and promotions judged by hourly rollback checks, starting every STEP_HOURS.

Tolerance: TOLERANCE on top of each goal. Overlapping windows of one month are correlated trials; the
tolerance is about two binomial standard errors at the goal for this many trials, not a tuned figure.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_decision import Rates, Scored, gate_rates, rollback_rates, scored
from training.decision import GAIN_BAD, GAIN_GOOD, WRONG_PROMOTION, WRONG_REFUSAL

STEP_HOURS = 3
TOLERANCE = 0.03


@pytest.fixture(scope="module")
def month() -> Scored:
    return scored("2023-02", "2023-01", "2021-01", max_iter=60, train_rows=20_000)


def within(rates: Rates, goal: float) -> bool:
    print(f"{rates.wrong} of {rates.trials} wrong ({rates.rate:.2%}; goal {goal:.0%} + {TOLERANCE:.0%})")
    return rates.trials > 100 and rates.rate <= goal + TOLERANCE


def test_gate_refuses_a_good_challenger_rarely(month: Scored) -> None:
    assert within(gate_rates(month, GAIN_GOOD, 24, STEP_HOURS), WRONG_REFUSAL)


def test_gate_promotes_a_bad_challenger_rarely(month: Scored) -> None:
    assert within(gate_rates(month, GAIN_BAD, 24, STEP_HOURS), WRONG_PROMOTION)


def test_rollback_rolls_back_a_good_promotion_rarely(month: Scored) -> None:
    assert within(rollback_rates(month, GAIN_GOOD, STEP_HOURS), WRONG_REFUSAL)


def test_rollback_keeps_a_bad_promotion_rarely(month: Scored) -> None:
    assert within(rollback_rates(month, GAIN_BAD, STEP_HOURS), WRONG_PROMOTION)
