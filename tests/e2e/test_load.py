"""Load through the deployed stack (issue: reliability): real rides + 1% bad records, every ride accounted.

CI runs LOAD_RIDES (default 1000); `make reliability` runs 10,000 through `python -m infra.load_test`.
"""

from __future__ import annotations

import os

import pytest

from infra.harness.stack import Stack
from infra.load_test import run_load

pytestmark = pytest.mark.localstack


def test_every_ride_is_predicted_or_rejected_once(stack: Stack) -> None:
    result = run_load(stack, int(os.environ.get("LOAD_RIDES", "1000")), bad_share=0.01, rate=400, seed=7)
    print(f"\nload: {result}")
    assert result.sent == result.sent_good + result.sent_bad
    assert result.lost == 0, result
    assert result.predicted == result.sent_good and result.rejected == result.sent_bad, result
    assert result.wrongly_rejected == 0 and result.wrongly_predicted == 0, result
    assert result.duplicated == 0, result
