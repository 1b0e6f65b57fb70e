"""The closed loop on the deployed stack (docs/architecture.md, Closed loop; `make localstack-test`).

One scenario, in order (each step needs the previous one's state), on real 2023-03 rides with actuals:
  1. FIRST_DAYS days of rides in pickup order at their real volume (every ride, ~2,300 a day; pickups in
     the past, moved by whole weeks) served by the live model, their actuals reported at dropoff;
  2. a weak challenger (direct retrain, max_iter 1): the gate refuses, the pointer stays;
  3. a forced bad promotion (force_promote, max_iter 1): the running predict function serves it;
  4. the drift-share alarm reaches ALARM (its metric put here; the monitor -> alarm path is test_stack's)
     -> SNS -> RetrainFunction -> the challenger beats the bad champion on the fresh holdout -> promoted
     -> the running predict function serves the new version, no redeploy; no ride dropped or doubled;
  5. another forced bad promotion, rides served by it -> rollback check -> the pointer goes back.
Every decision is asserted in the audit records (loop/audit/). The stack is deployed by tests/e2e/run.sh
with RetrainCooldownMinutes=0, PointerTtlSeconds=5 and the local MLflow server; the retrain's row target and
minimum are the template's (RetrainTargetRows, MinLabelledRows).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.harness.poll import PollTimeout, poll
from infra.harness.rides import real_rides
from infra.harness.stack import Stack, now_s
from infra.harness.streams import StreamReader
from lambda_retrain.guards import lock_holder
from tests.e2e.conftest import put_rides
from trip_core.capture import Actual
from trip_core.contracts import LOOP_LOCK_KEY

pytestmark = pytest.mark.localstack

ROOT = Path(__file__).resolve().parents[2]
MONTH = ROOT / "data" / "green_tripdata_2023-03.parquet"
FIRST_DAYS = 5  # more labelled rides than the template's RetrainTargetRows
RIDES_PER_DAY = 2300  # 2023-03 green taxi, cleaned as training cleans it
# rides per step; the rollback check judges at least a day of rides served by the bad model: the decision
# rule wants 12 pickup hours or more (training/decision.py MIN_HOURS)
FIRST, SECOND, THIRD, FOURTH = FIRST_DAYS * RIDES_PER_DAY, 300, 300, RIDES_PER_DAY


class Loop:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.id_base = int(time.time()) * 100_000 + 70_000
        # real 2023-03 rides in pickup order, served in disjoint slices
        self.rides = real_rides(MONTH, FIRST + SECOND + THIRD + FOURTH, seed=11, id_base=self.id_base)
        self.offset = 0

    def wait_until_idle(self, quiet_checks: int = 3) -> None:
        """Earlier tests drive the drift alarm to ALARM, and SNS starts a retrain of its own: wait until
        no retrain holds the lock (several checks in a row), so this test starts from a quiet loop."""
        quiet, lock = 0, None

        def settled() -> bool:
            nonlocal quiet, lock
            lock = self.stack.models.get(LOOP_LOCK_KEY)
            quiet = 0 if lock_holder(lock, datetime.now(UTC)) else quiet + 1
            return quiet >= quiet_checks

        try:
            poll(settled, timeout=600, interval=1.0, what="no retrain in flight")
        except PollTimeout as exc:
            audit = self.stack.audit_since(now_s() - timedelta(minutes=20))
            recent = [(r["time"], r["kind"], r["trigger"]) for r in audit]
            raise AssertionError(f"{exc}; the lock: {lock!r}; decisions since 20 min: {recent}") from exc

    def live(self) -> str:
        return self.stack.live().version

    def retrain(self, **payload: Any) -> dict[str, Any]:
        """A direct retrain; one that finds the lock held by an alarm-started retrain (which may take the
        lock after `wait_until_idle` saw it free) waits for that one and asks again, as a client would."""
        for _ in range(3):
            answer, error = self.stack.invoke_raw("RetrainFunctionName", {"skip_cooldown": True, **payload})
            assert not error, answer
            assert len(answer["decisions"]) == 1, answer
            decision: dict[str, Any] = answer["decisions"][0]
            if "holds the lock" not in str(decision.get("verdict", "")):
                return decision
            self.wait_until_idle()
        raise AssertionError(f"the retrain lock stayed busy: {decision}")

    def served_by(self, version: str) -> str | None:
        """The predict function's direct-invoke answer names `version` (its pointer cache expired)."""
        probe = {"ride": self.rides[0].fields(), "ride_id": "e2e-loop-probe"}
        answer, _ = self.stack.invoke_raw("PredictRideFunctionName", probe)
        return version if answer.get("version") == version else None

    def serve(self, count: int) -> dict[Any, list[dict[str, Any]]]:
        """The next `count` rides through the streams, their actuals sent; ride_id -> prediction records."""
        chunk = self.rides[self.offset : self.offset + count]
        self.offset += count
        ids = {r.ride_id for r in chunk}
        reader = StreamReader(self.stack["PredictionsStreamName"])
        put_rides(self.stack, [json.loads(r.payload) for r in chunk])
        poll(
            lambda: ids <= {r["prediction"]["ride_id"] for r in reader.read()},
            timeout=60 + count / 25,  # a liveness bound, not a speed claim: two cores also run the functions
            what=f"{count} predictions",
        )
        out: dict[Any, list[dict[str, Any]]] = {}
        for record in reader.records:
            if record["prediction"]["ride_id"] in ids:
                out.setdefault(record["prediction"]["ride_id"], []).append(record)
        given = {ride: records[-1]["prediction"]["prediction_id"] for ride, records in out.items()}
        labelled = [r for r in chunk if r.duration is not None]
        actuals = [Actual(given[r.ride_id], float(r.duration or 0)) for r in labelled]
        reported = [r.dropoff_utc() for r in labelled]
        self.stack.backdate_actuals(actuals, f"e2e-loop-{self.id_base + self.offset}", reported)
        return out

    def audit_since(self, since: datetime) -> list[dict[str, Any]]:
        return self.stack.audit_since(since)


def test_alarm_retrain_promote_serve_gate_refusal_rollback(aws: Callable[[str], Any], stack: Stack) -> None:
    loop = Loop(stack)
    loop.wait_until_idle()
    champion = loop.live()

    # 1. rides served by the live model, labelled
    served = loop.serve(FIRST)
    assert {r[0]["version"] for r in served.values()} == {champion}

    # 2. a weak challenger: refused by the gate, nothing moves
    refused = loop.retrain(action="retrain", reason="e2e: weak challenger", params={"max_iter": 1})
    assert refused["kind"] == "refused", refused
    assert refused["metrics"]["challenger_holdout_rmse"] > refused["metrics"]["champion_holdout_rmse"]
    assert loop.live() == champion

    # 3. a forced bad promotion; the running predict function picks it up within the pointer TTL
    forced = loop.retrain(
        action="retrain", reason="e2e: forced bad", force_promote=True, params={"max_iter": 1}
    )
    assert forced["kind"] == "promoted" and forced["verdict"].startswith("forced"), forced
    bad = str(forced["version"])
    assert loop.live() == bad
    poll(lambda: loop.served_by(bad), timeout=30, interval=1, what=f"version {bad} served")
    assert {r[0]["version"] for r in loop.serve(SECOND).values()} == {bad}

    # 4. drift-share alarm -> SNS -> retrain -> promoted (beats the bad champion) -> served
    cw, alarm = aws("cloudwatch"), stack["DriftShareAlarmName"]
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="e2e: start from OK")
    cw.put_metric_data(
        Namespace="TripDuration",
        MetricData=[{"MetricName": "DriftShare", "Value": 1.0, "Timestamp": datetime.now(UTC)}],
    )
    poll(
        lambda: cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "ALARM",
        timeout=150,
        interval=1,
        what=f"{alarm} in ALARM",
    )
    promoted = poll(
        lambda: next(
            (
                r
                for r in loop.audit_since(since)
                if r["kind"] in ("promoted", "refused", "failed") and r["trigger"]["source"] == "alarm"
            ),
            None,
        ),
        timeout=600,  # a fit on the gathered rides plus the champion's, on two loaded cores
        interval=1,
        what="the alarm's retrain decision in loop/audit/",
    )
    assert promoted["kind"] == "promoted", promoted["verdict"]
    assert promoted["trigger"]["alarm_name"] == alarm
    assert promoted["champion_version"] == bad
    metrics = promoted["metrics"]
    assert metrics["challenger_holdout_rmse"] < metrics["champion_holdout_rmse"]
    new = str(promoted["version"])
    assert loop.live() == new
    poll(lambda: loop.served_by(new), timeout=30, interval=1, what=f"version {new} served")
    after = loop.serve(THIRD)
    counts = Counter(len(records) for records in after.values())
    assert len(after) == THIRD and counts == {1: THIRD}, counts  # none dropped, none doubled
    assert {r[0]["version"] for r in after.values()} == {new}

    # 5. forced bad again, served, rollback check -> the pointer goes back to the loop's version
    forced = loop.retrain(
        action="retrain", reason="e2e: bad again", force_promote=True, params={"max_iter": 1}
    )
    bad = str(forced["version"])
    poll(lambda: loop.served_by(bad), timeout=30, interval=1, what=f"version {bad} served")
    assert {r[0]["version"] for r in loop.serve(FOURTH).values()} == {bad}
    rollback = loop.retrain(action="rollback_check", reason="e2e: rollback check")
    assert rollback["kind"] == "rollback", rollback
    assert rollback["metrics"]["live_mae"] > rollback["metrics"]["previous_mae"]
    assert loop.live() == new
    poll(lambda: loop.served_by(new), timeout=30, interval=1, what=f"version {new} served again")
    kinds = [r["kind"] for r in loop.audit_since(since - timedelta(minutes=30))]
    assert {"refused", "promoted", "rollback"} <= set(kinds), kinds
