"""Review of issue 13: attacks the first implementation let through (each a failing test, or the fix's)."""

from __future__ import annotations

import numpy as np

from lambda_actuals.handler import handle
from lambda_retrain.labelled import load_labelled
from tests.doubles.actuals import actual_record
from tests.unit.test_actuals_service import Stack
from tests.unit.test_label_attacks import DISTANCES, END, START, TRUTH, honest_day, ride, stack

__all__ = ["stack"]  # the fixture, shared with test_label_attacks


def test_a_rides_producer_replaying_other_riders_exact_rides_cannot_relabel_them(stack: Stack) -> None:
    """The replay of (b) in test_label_attacks with the victims' own inputs: not a conflict (a resend),
    so the attacker's prediction ids own the victims' ride ids and its later actuals replace theirs."""
    honest_day(stack)
    victims = np.arange(100)
    stack.stream.records.clear()
    replayed = stack.serve(*(ride(int(i), DISTANCES[i]) for i in victims), first_seq=3000)
    lines = [{"prediction_id": replayed[int(i)], "duration_minutes": 59.0} for i in victims]
    handle({"Records": [actual_record(6000 + i, line) for i, line in enumerate(lines)]}, stack.actuals)

    labelled = load_labelled(stack.capture, START, END)
    assert 59.0 not in labelled.target, "another client's actuals relabelled the victims' rides"
    assert labelled.summary["conflicting_rides"] == len(victims)  # disputed: labelled by none, counted
    assert sorted(labelled.target.tolist()) == sorted(TRUTH[len(victims) :].tolist())
