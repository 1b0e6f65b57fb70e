"""Safe rollout (lambda_retrain/rollout.py) with in-memory stores and a fake MLflow: a challenger that
passed the gate goes to shadow, is judged on paired captured answers, goes to a canary and live, or is
retired; the approve mode waits for an operator; alarms stop a canary; a retrain waits for the rollout."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from lambda_retrain.audit import read_audit, read_state
from lambda_retrain.config import PromotionPolicy, RetrainConfig
from lambda_retrain.loop import handle
from lambda_retrain.ports import Ports
from lambda_retrain.triggers import TriggerRefused, direct_trigger
from tests.doubles.captures import capture_objects, live_pickups, pids
from tests.doubles.retrain import StaticAlarms
from tests.unit.test_retrain_loop import CONFIG, NOW, FakeTracker, drifted, features, mem, rides  # noqa: F401
from training.export import export_bundle
from training.model import ModelParams, fit
from training.publish import publish_version
from trip_core.bundle import load_bundle
from trip_core.capture import Actual, CaptureBatch, encode_actuals
from trip_core.contracts import LIVE_POINTER_KEY, actuals_key, bundle_key, profile_key, utc_iso
from trip_core.plan import in_canary, plan_of
from trip_core.pointer import ModelPointer

AUTO = replace(
    CONFIG,
    promotion_policy=PromotionPolicy.AUTO,
    canary_share=0.1,
    rollout_stage_hours=48,
    canary_alarms=("td-canary",),
)
APPROVE = replace(AUTO, promotion_policy=PromotionPolicy.APPROVE, approval_hours=12)
TICK = {"action": "rollback_check", "source": "schedule", "reason": "schedule"}


class Topic:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def publish(self, subject: str, message: str) -> None:
        self.messages.append((subject, json.loads(message)))


def live(ports: Ports) -> tuple[ModelPointer, dict[str, Any]]:
    document = json.loads(mem(ports.models).objects[LIVE_POINTER_KEY])
    return ModelPointer.from_dict(document), document


def bundle_of(ports: Ports, version: str) -> bytes:
    return mem(ports.models).objects[bundle_key("m", version)]


def serve_rides(
    ports: Ports,
    answered: str,
    paired: str | None,
    at: datetime,
    first_id: int,
    n: int = 1500,
    seed: int = 5,
    actual: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    prediction_ids: Callable[[list[int | str]], list[str]] = pids,
    actuals: bool = True,
) -> None:
    """`n` labelled rides of the current relation answered by `answered` (with `paired`'s answer captured
    beside), picked up over the 30 h before `at`; `actual(true, served)`: what the clients report."""
    r = rides(n, seed)
    r = {**r, "pickup": live_pickups(n, at, 30 * 3600)}
    x = features(r)
    answer = load_bundle(bundle_of(ports, answered)).predict(x)
    beside = None if paired is None else load_bundle(bundle_of(ports, paired)).predict(x)
    ids: list[int | str] = list(range(first_id, first_id + n))
    issued = prediction_ids(ids)
    for start in range(0, n, 100):
        part = slice(start, start + 100)
        batch = CaptureBatch(
            "m", answered, utc_iso(at), issued[part], ids[part],
            [str(p) for p in r["pickup"][part]], [int(v) for v in r["pu"][part]],
            [int(v) for v in r["do"][part]], [float(v) for v in r["distance"][part]],
            [float(v) for v in answer[part]],
            paired_version=paired,
            paired_prediction=None if beside is None else [float(v) for v in beside[part]],
        )  # fmt: skip
        for key, body in capture_objects(batch, "shard-0", f"{at:%H%M}{first_id + start}").items():
            mem(ports.capture).put(key, body)
    if actuals:
        told = r["duration"] if actual is None else actual(r["duration"], answer)
        lines = [Actual(p, float(d)) for p, d in zip(issued, told, strict=True)]
        mem(ports.capture).put(actuals_key(at, str(first_id)), encode_actuals(lines))


def publish_fit(ports: Ports, version: str, slope: float = 3.0, seed: int = 9) -> None:
    r = rides(3000, seed, slope=slope)
    body = export_bundle(fit(features(r), r["duration"], ModelParams(max_iter=40)), {"model_name": "m"})
    pointer = ModelPointer(
        "m", version, bundle_key("m", version), load_bundle(body).sha256, profile_key("m", version),
        2.0, 1.6, f"run-{version}", utc_iso(NOW),
    )  # fmt: skip
    publish_version(mem(ports.models), pointer, body, b"{}")


def publish_worse(ports: Ports, version: str) -> None:
    """A published version (not live) fitted to a relation that no longer holds."""
    publish_fit(ports, version, slope=0.2)


def in_shadow(ports: Ports, config: RetrainConfig) -> str:
    """The drift alarm's retrain: the better challenger passes the gate and goes into shadow."""
    (decision,) = handle({"reason": "test", "params": {"max_iter": 40}}, ports, config, NOW, "t")["decisions"]
    assert decision["kind"] == "rollout", decision
    return str(decision["version"])


def kinds(ports: Ports) -> list[str]:
    return [r["kind"] for r in read_audit(ports.models)]


def test_auto_shadow_then_canary_then_live(drifted: tuple[Ports, FakeTracker]) -> None:  # noqa: F811
    ports, tracker = drifted
    challenger = in_shadow(ports, AUTO)
    pointer, document = live(ports)
    assert pointer.version == "1" and plan_of(document, "1").shadow == challenger
    assert tracker.aliases == {} and tracker.versions[challenger]["loop.stage"] == "shadow"
    assert read_state(ports.models)["rollout"]["stage"] == "shadow"

    assert handle(TICK, ports, AUTO, NOW + timedelta(hours=1), "t") == {"decisions": [], "ignored": True}
    serve_rides(ports, "1", challenger, NOW + timedelta(hours=30), 50_000)
    (decision,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=31), "t")["decisions"]
    assert decision["kind"] == "rollout" and decision["verdict"].startswith("canary at 10% of the rides")
    assert decision["metrics"]["challenger_mae"] < decision["metrics"]["live_mae"]
    plan = plan_of(live(ports)[1], "1")
    assert (plan.shadow, plan.canary, plan.canary_share) == (None, challenger, 0.1)

    serve_rides(ports, challenger, "1", NOW + timedelta(hours=62), 60_000, seed=6)
    (decision,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=63), "t")["decisions"]
    assert decision["kind"] == "promoted", decision
    pointer, document = live(ports)
    assert pointer.version == challenger and "plan" not in document
    assert tracker.aliases == {"production": challenger}
    assert read_state(ports.models)["last_promotion"]["judged_at"] == utc_iso(NOW + timedelta(hours=63))
    assert kinds(ports)[-3:] == ["rollout", "rollout", "promoted"]


def test_a_worse_challenger_is_retired_in_shadow_having_answered_no_ride(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    ports, tracker = drifted
    publish_worse(ports, "bad")
    from lambda_retrain import rollout

    rollout.start(ports, AUTO, NOW, {"verdict": "passed the gate", "model_name": "m"}, "bad")
    serve_rides(ports, "1", "bad", NOW + timedelta(hours=30), 50_000)
    (decision,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=31), "t")["decisions"]
    assert decision["kind"] == "retired" and decision["verdict"].startswith("retired: shadow:"), decision
    pointer, document = live(ports)
    assert pointer.version == "1" and "plan" not in document
    assert tracker.versions["bad"]["loop.stage"] == "retired"
    answered = {c["model_version"] for c in _captures(ports)}
    assert answered == {"1"}  # the shadow answered none


def test_a_forced_challenger_still_goes_through_shadow(drifted: tuple[Ports, FakeTracker]) -> None:  # noqa: F811
    ports, _ = drifted
    (good,) = handle({"reason": "test"}, ports, CONFIG, NOW, "t")["decisions"]  # policy direct: live
    assert good["kind"] == "promoted", good
    forced = {"reason": "test", "force_promote": True, "skip_cooldown": True, "params": {"max_iter": 1}}
    (decision,) = handle(forced, ports, AUTO, NOW + timedelta(hours=2), "t")["decisions"]
    assert decision["kind"] == "rollout" and "forced past the gate" in decision["verdict"], decision
    bad = str(decision["version"])
    pointer, document = live(ports)
    assert pointer.version == good["version"] and plan_of(document, pointer.version).shadow == bad
    serve_rides(ports, pointer.version, bad, NOW + timedelta(hours=32), 50_000)
    (judged,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=33), "t")["decisions"]
    assert judged["kind"] == "retired" and live(ports)[0].version == good["version"], judged
    assert bad not in {c["model_version"] for c in _captures(ports)}  # it answered no ride


def test_a_promotion_not_judged_yet_is_judged_while_a_rollout_runs(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    ports, _ = drifted
    (good,) = handle({"reason": "test"}, ports, CONFIG, NOW, "t")["decisions"]  # direct: live, not judged
    forced = {"reason": "test", "force_promote": True, "skip_cooldown": True, "params": {"max_iter": 1}}
    (shadow,) = handle(forced, ports, AUTO, NOW + timedelta(hours=1), "t")["decisions"]
    serve_rides(ports, good["version"], str(shadow["version"]), NOW + timedelta(hours=12), 50_000)
    (judged,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=13), "t")["decisions"]  # in the window
    assert judged["kind"] == "rollback_kept", judged
    assert read_state(ports.models)["last_promotion"]["judged_at"] == utc_iso(NOW + timedelta(hours=13))
    (retired,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=14), "t")["decisions"]
    assert retired["kind"] == "retired" and retired["version"] == shadow["version"], retired


def test_approve_waits_for_the_operator_and_tells_the_topic(drifted: tuple[Ports, FakeTracker]) -> None:  # noqa: F811
    ports, _ = drifted
    topic = Topic()
    ports.notifier = topic
    challenger = in_shadow(ports, APPROVE)
    serve_rides(ports, "1", challenger, NOW + timedelta(hours=30), 50_000)
    (decision,) = handle(TICK, ports, APPROVE, NOW + timedelta(hours=31), "t")["decisions"]
    assert decision["kind"] == "rollout" and decision["verdict"].startswith("awaiting approval"), decision
    subject, evidence = topic.messages[-1]
    assert subject == f"trip-duration rollout: {challenger}: awaiting_approval"
    assert evidence["metrics"]["rides"] == 1500 and evidence["metrics"]["decision"]["outcome"] == "better"
    assert handle(TICK, ports, APPROVE, NOW + timedelta(hours=32), "t")["decisions"] == []  # waits quietly

    wrong = handle({"action": "approve", "version": "1"}, ports, APPROVE, NOW + timedelta(hours=33), "op")
    assert wrong["decisions"][0]["kind"] == "invalid_request"
    ok = handle({"action": "approve", "version": challenger, "reason": "looks right"}, ports, APPROVE,
                NOW + timedelta(hours=33), "op")  # fmt: skip
    assert ok["decisions"][0]["verdict"].startswith("canary at 10% of the rides: approved by op: looks right")
    assert plan_of(live(ports)[1], "1").canary == challenger


def test_a_rejected_or_expired_approval_retires_the_challenger(drifted: tuple[Ports, FakeTracker]) -> None:  # noqa: F811
    ports, _ = drifted
    challenger = in_shadow(ports, APPROVE)
    serve_rides(ports, "1", challenger, NOW + timedelta(hours=30), 50_000)
    handle(TICK, ports, APPROVE, NOW + timedelta(hours=31), "t")
    later = NOW + timedelta(hours=31 + 12)
    (expired,) = handle(TICK, ports, APPROVE, later, "t")["decisions"]
    assert expired["kind"] == "retired" and "the approval expired after 12 h" in expired["verdict"]
    assert "plan" not in live(ports)[1]
    again = handle({"action": "reject", "version": challenger}, ports, APPROVE, later, "op")
    assert again["decisions"][0]["verdict"].endswith("no version is awaiting approval")


def test_reject_retires_and_the_live_model_answers_every_ride(drifted: tuple[Ports, FakeTracker]) -> None:  # noqa: F811
    ports, _ = drifted
    challenger = in_shadow(ports, APPROVE)
    serve_rides(ports, "1", challenger, NOW + timedelta(hours=30), 50_000)
    handle(TICK, ports, APPROVE, NOW + timedelta(hours=31), "t")
    (rejected,) = handle({"action": "reject", "version": challenger, "reason": "no"}, ports, APPROVE,
                         NOW + timedelta(hours=32), "op")["decisions"]  # fmt: skip
    assert rejected["kind"] == "retired" and rejected["verdict"] == "retired: rejected by op: no"
    assert "plan" not in live(ports)[1]


def test_an_alarm_on_the_canary_stops_it_at_once(drifted: tuple[Ports, FakeTracker]) -> None:  # noqa: F811
    ports, _ = drifted
    challenger = in_shadow(ports, AUTO)
    serve_rides(ports, "1", challenger, NOW + timedelta(hours=30), 50_000)
    handle(TICK, ports, AUTO, NOW + timedelta(hours=31), "t")
    assert plan_of(live(ports)[1], "1").canary == challenger
    ports.alarms = StaticAlarms({"td-canary": "ALARM"})
    (stopped,) = handle(_alarm("td-canary"), ports, AUTO, NOW + timedelta(hours=32), "t")["decisions"]
    assert (
        stopped["kind"] == "retired" and stopped["verdict"] == "retired: canary stopped: td-canary in ALARM"
    )
    assert "plan" not in live(ports)[1] and live(ports)[0].version == "1"


def test_no_retrain_while_a_rollout_runs_and_a_moved_pointer_ends_it(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    ports, _ = drifted
    challenger = in_shadow(ports, AUTO)
    (skipped,) = handle(_alarm("td-drift-share"), ports, AUTO, NOW + timedelta(hours=8), "t")["decisions"]
    assert skipped["verdict"] == f"skipped: version {challenger} is in rollout (shadow)"
    rollback = {"action": "rollback", "version": "1", "reason": "operator"}
    refused = handle(rollback, ports, AUTO, NOW + timedelta(hours=9), "op")["decisions"][0]
    assert refused["verdict"] == "refused: rollback to 1: version 1 is live already"
    publish_worse(ports, "0")
    (moved,) = handle({**rollback, "version": "0"}, ports, AUTO, NOW + timedelta(hours=9), "op")["decisions"]
    assert moved["kind"] == "rollback" and live(ports)[0].version == "0" and "plan" not in live(ports)[1]
    (ended,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=10), "t")["decisions"]
    assert ended["kind"] == "retired" and ended["verdict"] == "ended: serving/live.json is version 0 now"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "approve"}, "approve needs a version"),
        ({"action": "rollback", "version": "a/b"}, "rollback needs a version"),
        ({"action": "retrain", "version": "3"}, "version is for"),
        ({"action": "stop_canary"}, "action must be one of"),
    ],
)
def test_operator_requests_are_checked(event: dict[str, Any], message: str) -> None:
    with pytest.raises(TriggerRefused, match=message):
        direct_trigger(event, AUTO)


def test_the_canary_answers_a_stable_share_of_rides() -> None:
    from trip_core.plan import TrafficPlan

    plan = TrafficPlan(canary="12", canary_share=0.1)
    share = np.mean([in_canary(f"2023030614-{i:032x}", plan) for i in range(20_000)])
    assert 0.09 < share < 0.11


def _alarm(name: str) -> dict[str, Any]:
    message = {"AlarmName": name, "NewStateValue": "ALARM", "NewStateReason": "threshold crossed"}
    return {"Records": [{"Sns": {"Message": json.dumps(message)}}]}


def _captures(ports: Ports) -> list[dict[str, Any]]:
    import gzip

    return [
        json.loads(gzip.decompress(body))
        for key, body in mem(ports.capture).objects.items()
        if key.startswith("captures/")
    ]
