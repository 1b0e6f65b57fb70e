"""The closed loop on the deployed stack (docs/architecture.md, Closed loop; `make localstack-test`).

One scenario, in order (each step needs the previous one's state), on real 2023-03 rides with actuals:
  1. rides served by the live model, their actuals sent;
  2. a weak challenger (direct retrain, max_iter 1): the gate refuses, the pointer stays;
  3. a forced bad promotion (force_promote, max_iter 1): the running predict function serves it;
  4. the drift-share alarm reaches ALARM (its metric put here; the monitor -> alarm path is test_stack's)
     -> SNS -> RetrainFunction -> the challenger beats the bad champion on the fresh holdout -> promoted
     -> the running predict function serves the new version, no redeploy; no ride dropped or doubled;
  5. another forced bad promotion, rides served by it -> rollback check -> the pointer goes back.
Every decision is asserted in the audit records (loop/audit/). The stack is deployed by tests/e2e/run.sh
with RetrainCooldownMinutes=0, a small MinLabelledRows, PointerTtlSeconds=5 and the local MLflow server.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from infra.aws import client
from lambda_retrain.audit import read_audit
from lambda_retrain.aws import S3Store
from tests.e2e.conftest import StreamReader, poll, put_rides
from trip_core.capture import Actual, encode_actuals
from trip_core.contracts import LIVE_POINTER_KEY, LOOP_LOCK_KEY
from trip_core.pointer import ModelPointer

pytestmark = pytest.mark.localstack

ROOT = Path(__file__).resolve().parents[2]
MONTH = ROOT / "data" / "green_tripdata_2023-03.parquet"
FIRST, SECOND, THIRD, FOURTH = 600, 300, 300, 300  # rides per step (MinLabelledRows=300 in run.sh)
Aws = Callable[[str], Any]


@functools.cache
def month_rides() -> list[tuple[dict[str, Any], float]]:
    """(ride payload without id, actual minutes) of real 2023-03 rides, in pickup order; disjoint slices."""
    from training.data import PICKUP, load_month

    frame = load_month(str(MONTH)).frame.sample(n=FIRST + SECOND + THIRD + FOURTH, random_state=11)
    return [
        (
            {
                "PULocationID": int(r.PULocationID),
                "DOLocationID": int(r.DOLocationID),
                "trip_distance": float(r.trip_distance),
                "pickup_datetime": getattr(r, PICKUP).isoformat(timespec="seconds"),
            },
            round(float(r.duration), 3),
        )
        for r in frame.sort_values(PICKUP).itertuples(index=False)
    ]


def retrain_client() -> Any:
    """A retrain answers after seconds to minutes: long read timeout, never a retried (repeated) invoke."""
    return client("lambda", config=Config(read_timeout=600, retries={"max_attempts": 0}))


class Loop:
    def __init__(self, aws: Aws, stack: dict[str, str]) -> None:
        self.aws, self.stack = aws, stack
        self.models = S3Store(stack["ModelsBucketName"], aws("s3"))
        self.lam = retrain_client()
        self.id_base = int(time.time()) * 100_000 + 70_000
        self.offset = 0

    def wait_until_idle(self, quiet_checks: int = 3) -> None:
        """Earlier tests drive the drift alarm to ALARM, and SNS starts a retrain of its own: wait until
        no retrain holds the lock (several checks in a row), so this test starts from a quiet loop."""
        quiet = 0

        def settled() -> bool:
            nonlocal quiet
            quiet = quiet + 1 if self.models.get(LOOP_LOCK_KEY) is None else 0
            return quiet >= quiet_checks

        poll(settled, timeout=600, interval=1.0, what="no retrain in flight")

    def live(self) -> str:
        body = self.models.get(LIVE_POINTER_KEY)
        assert body is not None
        return ModelPointer.from_json(body).version

    def retrain(self, **payload: Any) -> dict[str, Any]:
        response = self.lam.invoke(
            FunctionName=self.stack["RetrainFunctionName"],
            Payload=json.dumps({"skip_cooldown": True, **payload}).encode(),
        )
        answer: dict[str, Any] = json.loads(response["Payload"].read())
        assert not response.get("FunctionError"), answer
        assert len(answer["decisions"]) == 1, answer
        decision: dict[str, Any] = answer["decisions"][0]
        return decision

    def served_by(self, version: str) -> str | None:
        """The predict function's direct-invoke answer names `version` (its pointer cache expired)."""
        response = self.aws("lambda").invoke(
            FunctionName=self.stack["PredictFunctionName"],
            Payload=json.dumps({"ride": month_rides()[0][0], "ride_id": "e2e-loop-probe"}).encode(),
        )
        answer = json.loads(response["Payload"].read())
        return version if answer.get("version") == version else None

    def serve(self, count: int) -> dict[Any, list[dict[str, Any]]]:
        """The next `count` rides through the streams, their actuals sent; ride_id -> prediction records."""
        chunk = month_rides()[self.offset : self.offset + count]
        rides: list[dict[str, Any]] = [
            {"ride": r, "ride_id": self.id_base + self.offset + i} for i, (r, _) in enumerate(chunk)
        ]
        self.offset += count
        ids = {r["ride_id"] for r in rides}
        reader = StreamReader(self.aws("kinesis"), self.stack["PredictionsStreamName"])
        put_rides(self.aws, self.stack["RidesStreamName"], rides)
        poll(
            lambda: ids <= {r["prediction"]["ride_id"] for r in reader.read()},
            timeout=120,
            what=f"{count} predictions",
        )
        out: dict[Any, list[dict[str, Any]]] = {}
        for record in reader.records:
            if record["prediction"]["ride_id"] in ids:
                out.setdefault(record["prediction"]["ride_id"], []).append(record)
        actuals = encode_actuals(Actual(int(r["ride_id"]), d) for r, (_, d) in zip(rides, chunk, strict=True))
        key = f"actuals/dt={datetime.now(UTC):%Y-%m-%d}/e2e-loop-{self.id_base + self.offset}.jsonl"
        self.aws("s3").put_object(Bucket=self.stack["CaptureBucketName"], Key=key, Body=actuals)
        return out

    def audit_since(self, since: datetime) -> list[dict[str, Any]]:
        return [r for r in read_audit(self.models) if r["time"] >= since.strftime("%Y-%m-%dT%H:%M:%SZ")]


def test_alarm_retrain_promote_serve_gate_refusal_rollback(aws: Aws, stack: dict[str, str]) -> None:
    loop = Loop(aws, stack)
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
                if r["kind"] in ("promoted", "refused") and r["trigger"]["source"] == "alarm"
            ),
            None,
        ),
        timeout=300,
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
