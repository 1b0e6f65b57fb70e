"""Hostile review of the safe rollout (0d134f7, issue 15 part 2): each test was a confirmed defect, now
held. Races are made deterministic by RaceOnce: a rival invocation runs between a read and a write."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from lambda_retrain import rollout
from lambda_retrain.audit import read_audit, read_state, write_state
from lambda_retrain.loop import handle
from lambda_retrain.ports import Ports, Store, Tagged
from tests.doubles.retrain import MemoryStore, StaticAlarms
from tests.unit.test_retrain_loop import NOW, FakeTracker, drifted, features, mem, rides  # noqa: F401
from tests.unit.test_rollout import APPROVE, AUTO, TICK, _alarm, live, publish_fit, serve_rides
from trip_core.capture import decode_capture, encode_capture
from trip_core.contracts import (
    LIVE_POINTER_KEY,
    LOOP_STATE_KEY,
    utc_iso,
)
from trip_core.plan import TrafficPlan, live_document, plan_of

GOOD = "good"  # a published (not live) version fitted to the current relation: far better than live "1"


# ------------------------------------------------------------------------------------------ helpers
def set_stage(ports: Ports, version: str, stage: str, started: datetime, plan: TrafficPlan | None) -> None:
    """What the rollout's own steps would have written for `version` at `stage` (beside live "1")."""
    state = read_state(ports.models)
    state["rollout"] = {
        "version": version, "live_version": "1", "policy": "auto", "started_at": utc_iso(NOW),
        "stage": stage, "stage_started_at": utc_iso(started),
    }  # fmt: skip
    write_state(ports.models, state)
    if plan is not None:
        pointer, _ = live(ports)
        mem(ports.models).put(LIVE_POINTER_KEY, live_document(pointer, plan))


class RaceOnce:
    """A models store whose first conditional write of serving/live.json lets a rival invocation run
    first (between the reader's read and its write): two Lambda invocations interleaved, made
    deterministic. `on_state_read`: the rival runs right after the first read of loop/state.json."""

    def __init__(self, store: Store, rival: Callable[[], Any], on_state_read: bool = False) -> None:
        self.store, self.rival, self.on_state_read, self.raced = store, rival, on_state_read, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _race(self) -> None:
        if not self.raced:
            self.raced = True
            self.rival()

    def get(self, key: str) -> bytes | None:
        body = self.store.get(key)
        if self.on_state_read and key == LOOP_STATE_KEY:
            self._race()
        return body

    def get_tagged(self, key: str) -> Tagged | None:
        return self.store.get_tagged(key)

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        if key == LIVE_POINTER_KEY and not self.on_state_read:
            self._race()
        return self.store.put_if_match(key, body, etag)


def stage_tag(tracker: FakeTracker, version: str) -> str | None:
    return tracker.versions.get(version, {}).get("loop.stage")


# ------------------------------------------------------------------------------------------ races
def test_canary_alarm_racing_the_promotion_leaves_the_alarmed_canary_live_and_unjudged(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """stop_canary reads serving/live.json, the scheduled check promotes the canary, stop_canary's write
    fails and _end marks the rollout retired: the alarmed version now serves every ride, is audited and
    MLflow-tagged `retired` while holding the production alias, and last_promotion.judged_at stops the
    rollback check from ever judging it."""
    ports, tracker = drifted
    publish_fit(ports, GOOD)
    set_stage(ports, GOOD, "canary", NOW, TrafficPlan(canary=GOOD, canary_share=0.1))
    serve_rides(ports, GOOD, "1", NOW + timedelta(hours=30), 50_000)
    ports.alarms = StaticAlarms({"td-canary": "ALARM"})
    inner = ports.models

    def scheduled_check() -> None:  # it read the alarm just before the alarm went to ALARM
        calm = replace(ports, models=inner, alarms=StaticAlarms({"td-canary": "OK"}))
        (promoted,) = handle(TICK, calm, AUTO, NOW + timedelta(hours=31), "tick")["decisions"]
        assert promoted["kind"] == "promoted", promoted

    raced = replace(ports, models=RaceOnce(inner, scheduled_check))
    (stopped,) = handle(_alarm("td-canary"), raced, AUTO, NOW + timedelta(hours=31), "alarm")["decisions"]
    serving = live(ports)[0].version
    stage = read_state(ports.models)["rollout"]["stage"]
    assert not (serving == GOOD and stage == "retired"), (
        f"the alarmed canary {GOOD} serves every ride, the rollout says {stage!r}, MLflow says "
        f"{stage_tag(tracker, GOOD)!r} with alias {tracker.aliases}, stop verdict {stopped['verdict']!r}"
    )


def test_approval_racing_the_expiry_leaves_a_canary_serving_that_no_alarm_can_stop(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """The expiry tick reads serving, the operator's approve (no expiry check of its own) writes a canary
    plan, the tick's write fails and _end marks the rollout retired: the plan keeps the canary answering
    its share, nothing ever clears it, and the canary alarm is then ignored ('no canary is running')."""
    ports, _ = drifted
    publish_fit(ports, GOOD)
    set_stage(ports, GOOD, "awaiting_approval", NOW, TrafficPlan(shadow=GOOD))
    later = NOW + timedelta(hours=12, minutes=1)  # APPROVE.approval_hours = 12
    inner = ports.models

    def operator_approves() -> None:
        event = {"action": "approve", "version": GOOD, "reason": "ok"}
        handle(event, replace(ports, models=inner), APPROVE, later, "op")

    handle(TICK, replace(ports, models=RaceOnce(inner, operator_approves)), APPROVE, later, "tick")
    ports.alarms = StaticAlarms({"td-canary": "ALARM"})
    (alarm,) = handle(_alarm("td-canary"), ports, APPROVE, later + timedelta(minutes=5), "alarm")["decisions"]
    canary = plan_of(live(ports)[1], "1").canary
    assert canary is None, (
        f"canary {canary} still answers its share; rollout stage "
        f"{read_state(ports.models)['rollout']['stage']!r}; the canary alarm: {alarm['verdict']!r}"
    )


def test_a_retrain_that_checked_before_another_rollout_began_overwrites_it(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """loop._retrain_unless_rolling_out reads the state outside the retrain lock and rollout.start checks
    neither the state nor the plan: a rollout begun in between (another invocation's retrain) is
    overwritten, its version left in shadow in MLflow and never audited as ended."""
    ports, tracker = drifted
    publish_fit(ports, "other", seed=11)
    inner = ports.models

    def other_rollout_starts() -> None:
        rollout.start(
            replace(ports, models=inner), AUTO, NOW, {"verdict": "passed", "model_name": "m"}, "other"
        )

    raced = replace(ports, models=RaceOnce(inner, other_rollout_starts, on_state_read=True))
    event = {"reason": "operator", "params": {"max_iter": 40}, "skip_cooldown": True}
    (decision,) = handle(event, raced, AUTO, NOW, "op")["decisions"]
    ended = [r for r in read_audit(ports.models) if r["kind"] == "retired" and r.get("version") == "other"]
    shadow = plan_of(live(ports)[1], "1").shadow
    assert decision["kind"] != "rollout" or ended or shadow == "other", (
        f"{decision['version']} replaced rollout of 'other' (plan shadow {shadow}); 'other' is still "
        f"tagged {stage_tag(tracker, 'other')!r} and no record ends it"
    )


# ------------------------------------------------------------------------------------------ operators
def test_an_approval_after_its_expiry_is_refused(drifted: tuple[Ports, FakeTracker]) -> None:  # noqa: F811
    """rollout._awaiting does not look at APPROVAL_HOURS: an approve after expiry (before a scheduled
    tick retired it) starts the canary."""
    ports, _ = drifted
    publish_fit(ports, GOOD)
    set_stage(ports, GOOD, "awaiting_approval", NOW, TrafficPlan(shadow=GOOD))
    event = {"action": "approve", "version": GOOD, "reason": "late"}
    (decision,) = handle(event, ports, APPROVE, NOW + timedelta(hours=13), "op")["decisions"]
    assert decision["kind"] in ("invalid_request", "retired"), decision["verdict"]


def test_a_manual_rollback_to_the_challenger_is_not_audited_as_its_retirement(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """`make rollback VERSION=<challenger>` during its shadow: the next check ends the rollout with
    _end, which audits and MLflow-tags the now-live (production alias) version `retired`."""
    ports, tracker = drifted
    publish_fit(ports, GOOD)
    rollout.start(ports, AUTO, NOW, {"verdict": "passed", "model_name": "m"}, GOOD)
    handle(
        {"action": "rollback", "version": GOOD, "reason": "op"}, ports, AUTO, NOW + timedelta(hours=1), "op"
    )
    assert live(ports)[0].version == GOOD and tracker.aliases["production"] == GOOD
    (ended,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=2), "t")["decisions"]
    assert stage_tag(tracker, GOOD) != "retired" and ended["kind"] != "retired", (
        f"live version {GOOD} audited {ended['kind']!r} ({ended['verdict']}) and tagged "
        f"loop.stage={stage_tag(tracker, GOOD)!r}"
    )


def test_a_malformed_rollout_in_the_state_does_not_stop_the_loop_for_good() -> None:
    """active() checks only `stage`: loop/state.json's rollout {"stage": "shadow"} makes every scheduled
    check and every retrain raise KeyError (audited `failed`) forever; no invoke clears it."""
    ports = Ports(MemoryStore(), MemoryStore(), StaticAlarms({}))
    write_state(ports.models, {"rollout": {"stage": "shadow"}})
    problems = []
    for event in (TICK, {"reason": "operator retrain"}, {"action": "reject", "version": "2"}, TICK):
        try:
            handle(event, ports, AUTO, NOW, "op")
        except Exception as exc:
            problems.append(f"{event.get('action', 'retrain')}: {type(exc).__name__}: {exc}")
    assert problems == []


# ------------------------------------------------------------------------------------------ evidence
def test_a_client_resending_rides_removes_them_from_the_canarys_evidence(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """load_labelled kept each ride's latest capture before keep_batch filtered by arm: a ride sent again
    with the same inputs (a new prediction id, answered by live) took the canary's answer to it out of
    the canary's evidence. (A resend with other inputs makes the ride conflicting, labelled by none:
    the rule against forged labels, for every arm alike.)"""
    ports, _ = drifted
    publish_fit(ports, GOOD)
    set_stage(ports, GOOD, "canary", NOW, TrafficPlan(canary=GOOD, canary_share=0.1))
    at = NOW + timedelta(hours=30)
    serve_rides(ports, GOOD, "1", at, 50_000)
    state = read_state(ports.models)["rollout"]
    before = rollout.judge(ports, state, rollout.Stage.CANARY, at + timedelta(hours=1)).rides
    for key, body in list(mem(ports.capture).objects.items()):
        if key.startswith("captures/"):
            original = decode_capture(body)
            if original.model_version != GOOD or original.paired_prediction is None:
                continue
            resent = replace(
                original,
                model_version="1",
                captured_at=utc_iso(at + timedelta(minutes=10)),
                prediction_id=[f"{p}-resent" for p in original.prediction_id],
                prediction=[float(v or 0.0) for v in original.paired_prediction],
                paired_version=None,
                paired_prediction=None,
            )
            mem(ports.capture).put(key.replace(".json.gz", "_resent.json.gz"), encode_capture(resent))
    after = rollout.judge(ports, state, rollout.Stage.CANARY, at + timedelta(hours=1)).rides
    assert after == before == 1500


def test_a_third_of_clients_echoing_on_their_worst_rides_retire_a_far_better_shadow(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """The shadow's verdict rests on client-reported actuals alone: clients who, on the 30 % of rides the
    live model got most wrong, report the answer they were given as the duration make the live model
    look better, and a challenger the gate and the trusted evaluation set backed is retired (the
    rollback check refuses exactly this: rollback._backed_by_evaluation_set)."""
    ports, _ = drifted
    publish_fit(ports, GOOD)
    rollout.start(ports, AUTO, NOW, {"verdict": "passed the gate", "model_name": "m"}, GOOD)

    def echo_worst(true: np.ndarray, served: np.ndarray) -> np.ndarray:
        error = np.abs(served - true)
        lie = error >= np.quantile(error, 0.7)
        return np.where(lie, served, true)

    serve_rides(ports, "1", GOOD, NOW + timedelta(hours=30), 50_000, actual=echo_worst)
    # undecided at 31 h; AUTO.rollout_stage_hours = 48: the stage decides on what it has
    (decision,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=49), "t")["decisions"]
    assert decision["kind"] != "retired", (
        f"{decision['verdict']} (metrics {json.dumps(decision['metrics'], default=str)[:300]})"
    )
