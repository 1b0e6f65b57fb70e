"""Regression tests from the third hostile review of the safe rollout (issue 15): each was a confirmed
defect, now fixed. Races are made deterministic by RaceOnce (tests/unit/test_review15_rollout.py): a
rival invocation runs between a read and a write."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from infra.operate import Stack, status
from lambda_monitor.arms import canary_quality
from lambda_predict.model_provider import LoadedModel, ModelLoadError, ModelProvider, Serving
from lambda_predict.service import _answers, plan_answers
from lambda_retrain import rollout
from lambda_retrain.audit import read_audit, read_state, write_state
from lambda_retrain.aws import S3Store
from lambda_retrain.loop import handle
from lambda_retrain.ports import Ports
from lambda_retrain.rollback import better_on_evaluation_set
from tests.doubles.retrain import MemoryStore, StaticAlarms
from tests.integration.test_operate_moto import stack  # noqa: F401  (the moto stack fixture)
from tests.unit.test_retrain_loop import (  # noqa: F401
    CONFIG,
    NOW,
    FakeTracker,
    drifted,
    features,
    mem,
    publish_evaluation_set,
    rides,
)
from tests.unit.test_review15_rollout import GOOD, RaceOnce, set_stage, stage_tag
from tests.unit.test_rollout import AUTO, TICK, _alarm, bundle_of, live, publish_fit, serve_rides
from trip_core.bundle import load_bundle
from trip_core.capture import CaptureBatch, decode_capture, encode_capture
from trip_core.contracts import LIVE_POINTER_KEY, MAX_RIDE_MINUTES, utc_iso, version_pointer_key
from trip_core.plan import TrafficPlan, live_document, plan_of
from trip_core.pointer import ModelPointer
from trip_core.rides import FieldError, ValidRide


def stage(ports: Ports) -> str | None:
    return (read_state(ports.models).get("rollout") or {}).get("stage")


# ------------------------------------------------------------------------------------------ races
def test_two_checks_at_once_leave_a_canary_serving_that_the_rollout_calls_retired(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """Two rollout checks of one shadow at once (EventBridge delivers a schedule at least once; a direct
    {"action": "rollback_check"} decides too): both judge 'better', the first writes the canary plan, the
    second's conditional write fails and _after_approval calls _end, which marks the rollout RETIRED
    without taking the canary out (rollout.py:273-274). The canary keeps answering its share, no check
    ever judges it again (no rollout is active), MLflow tags it retired."""
    ports, tracker = drifted
    publish_fit(ports, GOOD)
    rollout.start(ports, AUTO, NOW, {"verdict": "passed the gate", "model_name": "m"}, GOOD)
    serve_rides(ports, "1", GOOD, NOW + timedelta(hours=30), 50_000)
    inner, at = ports.models, NOW + timedelta(hours=31)

    def rival_check() -> None:
        (d,) = handle(TICK, replace(ports, models=inner), AUTO, at, "tick-2")["decisions"]
        assert d["kind"] == "rollout" and "canary" in d["verdict"], d

    handle(TICK, replace(ports, models=RaceOnce(inner, rival_check)), AUTO, at, "tick-1")
    canary = plan_of(live(ports)[1], "1").canary
    assert not (canary == GOOD and rollout.active(read_state(ports.models)) is None), (
        f"canary {canary} answers {AUTO.canary_share:.0%} of the rides, the rollout says {stage(ports)!r} "
        f"(MLflow loop.stage={stage_tag(tracker, GOOD)!r}); nothing will ever judge or end it"
    )


def test_two_checks_at_once_promote_and_audit_the_live_version_retired(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """The same duplicate check at the canary's end: the first promotes, the second's make_live fails and
    _promote calls _end (rollout.py:285-286): loop/state.json's rollout, the last audit record and the
    MLflow tag say the version that now holds the production alias was retired."""
    ports, tracker = drifted
    publish_fit(ports, GOOD)
    set_stage(ports, GOOD, "canary", NOW, TrafficPlan(canary=GOOD, canary_share=0.1))
    serve_rides(ports, GOOD, "1", NOW + timedelta(hours=30), 50_000)
    inner, at = ports.models, NOW + timedelta(hours=31)

    def rival_check() -> None:
        (d,) = handle(TICK, replace(ports, models=inner), AUTO, at, "tick-2")["decisions"]
        assert d["kind"] == "promoted", d

    (second,) = handle(TICK, replace(ports, models=RaceOnce(inner, rival_check)), AUTO, at, "tick-1")[
        "decisions"
    ]
    assert live(ports)[0].version == GOOD
    assert stage(ports) == "live" and second["kind"] != "retired" and stage_tag(tracker, GOOD) == "live", (
        f"{GOOD} is live (alias {tracker.aliases}), but the rollout says {stage(ports)!r}, the audit "
        f"{second['kind']!r} ({second['verdict']}), MLflow loop.stage={stage_tag(tracker, GOOD)!r}"
    )


# ------------------------------------------------------------------------------------------ evidence
class Source:
    """The predict function's view of the models bucket (lambda_predict.ports.ModelSource)."""

    def __init__(self, ports: Ports) -> None:
        self.objects = mem(ports.models).objects

    def read(self, key: str) -> bytes:
        return self.objects[key]


def provider(ports: Ports) -> ModelProvider:
    return ModelProvider(Source(ports), LIVE_POINTER_KEY, load_bundle, ttl_seconds=0.0)


def test_a_challenger_that_never_scored_a_ride_goes_live_on_the_timer_and_breaks_cold_starts(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """A stage with no compared ride at all is 'not enough evidence'; at ROLLOUT_STAGE_HOURS
    _judge_stage (rollout.py:145-161) asks only _backed, the evaluation set, which loads the bundle
    without its pointer's sha256. So a challenger the predict function refuses (here: its pointer's
    sha256 does not match the bundle; the plan leaves it out, counted, and the live model answers every
    ride) goes shadow -> canary -> live on the clock alone, having scored 0 rides; then every cold start
    of the predict function fails (ModelLoadError) and warm ones keep the old model."""
    ports, _ = drifted
    publish_fit(ports, GOOD)
    key = version_pointer_key(GOOD)
    pointer = ModelPointer.from_json(mem(ports.models).objects[key])
    mem(ports.models).put(key, replace(pointer, bundle_sha256="0" * 64).to_json().encode())
    rollout.start(ports, AUTO, NOW, {"verdict": "passed the gate", "model_name": "m"}, GOOD)
    models = provider(ports)
    models.load_initial()
    assert models.serving().shadow is None  # refused by the predict function: it scores no ride
    serve_rides(ports, "1", None, NOW + timedelta(hours=30), 50_000)  # the live model answered alone
    decisions = []
    for hours in (49, 98):  # AUTO.rollout_stage_hours = 48
        at = NOW + timedelta(hours=hours)
        serve_rides(ports, "1", None, at - timedelta(hours=1), 60_000 + hours, n=300)
        decisions += [(d["kind"], d["verdict"][:90]) for d in handle(TICK, ports, AUTO, at, "t")["decisions"]]
    cold = "cold start loads"
    try:
        provider(ports).load_initial()
    except ModelLoadError as exc:
        cold = f"cold start fails: {exc}"[:160]
    assert live(ports)[0].version != GOOD, f"{GOOD} live having scored 0 rides: {decisions}; {cold}"


class NoAnswerOnLongRides:
    """GOOD's bundle, but no plausible answer (> MAX_RIDE_MINUTES) for rides longer than 9 miles."""

    def __init__(self, bundle: Any) -> None:
        self.bundle, self.model_name = bundle, "m"

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.where(x[:, 3] > 9.0, 2 * MAX_RIDE_MINUTES, self.bundle.predict(x))


def test_a_challenger_with_no_answer_for_a_quarter_of_the_rides_passes_and_loses_them_once_live(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """A challenger's implausible answer is captured as 'no paired answer' (service.py:276) and the
    stage's judge keeps only rides with a finite paired answer (rollout.py:234); a canary's is answered by
    the live model instead (service.py:292). So the rides a challenger cannot answer count nowhere: it
    is judged 'better' on the rides it can answer, goes on, and once live every such ride is rejected
    (no answer for the rider). Nothing in the rollout counts a challenger's missing answers."""
    ports, _ = drifted
    publish_fit(ports, GOOD)
    partial = LoadedModel("m", GOOD, NoAnswerOnLongRides(load_bundle(bundle_of(ports, GOOD))), None)  # type: ignore[arg-type]
    first = LoadedModel("m", "1", load_bundle(bundle_of(ports, "1")), None)  # type: ignore[arg-type]
    r = rides(400, 3)
    valid = [
        ValidRide(i, int(r["pu"][i]), int(r["do"][i]), float(r["distance"][i]), r["pickup"][i].item(), True)
        for i in range(400)
    ]
    # (a) in shadow: the live model answers every ride, the shadow's long rides are captured unpaired
    minutes = [float(a[0]) for a in _answers(first, valid)]
    arms = plan_answers(
        Serving(first, TrafficPlan(shadow=GOOD), shadow=partial), valid, [str(i) for i in range(400)], minutes
    )
    unpaired = sum(1 for _, _, paired in arms if paired is not None and paired[1] is None)
    assert unpaired > 60  # ~ a quarter
    # (b) the rollout judges the shadow on the rest (captures as the service writes them)
    rollout.start(ports, AUTO, NOW, {"verdict": "passed the gate", "model_name": "m"}, GOOD)
    serve_rides(ports, "1", GOOD, NOW + timedelta(hours=30), 50_000)
    for key, body in list(mem(ports.capture).objects.items()):
        if key.startswith("captures/"):
            batch = decode_capture(body)
            if batch.paired_prediction is not None:
                kept = [
                    None if d > 9.0 else p
                    for d, p in zip(batch.trip_distance, batch.paired_prediction, strict=True)
                ]
                mem(ports.capture).put(key, encode_capture(replace(batch, paired_prediction=kept)))
    (judged,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=31), "t")["decisions"]
    # (c) once live, the rides it has no answer for are rejected
    rejected = sum(isinstance(a, FieldError) for a in _answers(partial, valid))
    assert stage(ports) != "canary", (
        f"{judged['verdict'][:160]} on {judged['metrics']['rides']} of 1500 labelled rides; in shadow it had "
        f"no answer for {unpaired}/400 rides, live it would reject {rejected}/400"
    )


def _batch(version: str, ids: range, answers: float, paired: tuple[str, float]) -> CaptureBatch:
    n = len(ids)
    return CaptureBatch(
        "m", version, "2023-03-06T15:00:00Z", [f"p{i}" for i in ids], list(ids), ["2023-03-06T10:00:00"] * n,
        [130] * n, [205] * n, [3.0] * n, [answers] * n,
        paired_version=paired[0], paired_prediction=[paired[1]] * n,
    )  # fmt: skip


def test_the_shadows_own_captures_make_the_canary_alarm_stop_a_better_canary() -> None:
    """lambda_monitor/arms.py:27-28 calls a capture a canary's when its paired version answered rides in
    the window. When the shadow of version 2 moves on to its canary, the monitor's 24 h window still holds
    the shadow's captures (live 1 answered, 2 paired) and 2 now answers rides: they are counted as the
    canary's, with the arms swapped. The canary 2 is perfect on its own rides (MAE 0 vs the live model's
    2), yet CanaryMAERatio is far above CanaryMAERatioThreshold (1.2): its alarm stops the better canary."""
    actuals = {str(i): 10.0 for i in range(1000)}
    shadow_stage = _batch("1", range(0, 900), 12.0, ("2", 10.0))  # yesterday: 2 in shadow, better
    canary_stage = _batch("2", range(900, 1000), 10.0, ("1", 12.0))  # now: 2 answers 10 % of the rides
    quality = canary_quality([shadow_stage, canary_stage], actuals, min_actuals=10)
    assert quality is not None
    assert quality["mae_ratio"] == pytest.approx(0.0), quality


# ------------------------------------------------------------------------------------------ alarms
def test_a_canary_alarm_already_in_alarm_when_the_canary_starts_never_stops_it(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """An alarm of CANARY_ALARMS (e.g. the predict function's errors, which the template lets an operator
    add) goes to ALARM while the challenger is in shadow: stop_canary ignores it ('no canary is
    running'). CloudWatch notifies on transitions only, and neither the shadow's advance nor the
    scheduled check (loop.py:104-105 -> rollout.check) looks at CANARY_ALARMS' states, as
    _retrain_if_still_alarming does for RETRAIN_ALARMS: the canary starts, serves and is promoted with
    its stop alarm in ALARM the whole time."""
    ports, _ = drifted
    publish_fit(ports, GOOD)
    rollout.start(ports, AUTO, NOW, {"verdict": "passed the gate", "model_name": "m"}, GOOD)
    ports.alarms = StaticAlarms({"td-canary": "ALARM"})
    (ignored,) = handle(_alarm("td-canary"), ports, AUTO, NOW + timedelta(hours=1), "alarm")["decisions"]
    assert ignored["kind"] == "ignored", ignored
    serve_rides(ports, "1", GOOD, NOW + timedelta(hours=30), 50_000)
    handle(TICK, ports, AUTO, NOW + timedelta(hours=31), "t")
    serve_rides(ports, GOOD, "1", NOW + timedelta(hours=62), 70_000)
    decisions = [d["kind"] for d in handle(TICK, ports, AUTO, NOW + timedelta(hours=63), "t")["decisions"]]
    assert ports.alarms.states(AUTO.canary_alarms) == {"td-canary": "ALARM"}
    assert live(ports)[0].version != GOOD, (
        f"{GOOD} promoted ({decisions}) with td-canary in ALARM since its shadow; audit: "
        f"{[r['kind'] for r in read_audit(ports.models)][-4:]}"
    )


def test_a_rollback_alarm_during_a_rollout_never_judges_the_promotion_it_is_about(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """loop.py:104-106: while any rollout runs, a ROLLBACK_ALARMS notification and every scheduled tick
    go to rollout.check, never to rollback_check. A loop promotion not judged yet (a force_promote, which
    at this commit goes straight live under auto too, or a promotion made before PromotionPolicy was
    switched to auto) followed by a retrain whose challenger enters shadow (cooldown 6 h < rollback
    window 24 h) is never judged: the MAE-ratio alarm on the bad live model produces a 'shadow, not
    decided yet' record, and the rollback window runs out during the shadow. (Fails at 1a18f92;
    passes since b309430, kept as a regression test.)"""
    ports, _ = drifted
    publish_fit(ports, "bad", slope=0.2)  # far worse than live "1" on the current relation
    bad = ModelPointer.from_json(mem(ports.models).objects[version_pointer_key("bad")])
    mem(ports.models).put(LIVE_POINTER_KEY, bad.to_json().encode())
    state = read_state(ports.models)
    state["last_promotion"] = {
        "version": "bad",
        "previous_version": "1",
        "promoted_at": utc_iso(NOW),
        "forced": True,
    }
    write_state(ports.models, state)
    serve_rides(ports, "bad", None, NOW + timedelta(hours=5), 40_000, n=600)
    publish_fit(ports, GOOD)
    rollout.start(
        ports, AUTO, NOW + timedelta(hours=6), {"verdict": "passed the gate", "model_name": "m"}, GOOD
    )
    alarm = {**_alarm("td-mae-ratio")}
    (decision,) = handle(alarm, ports, AUTO, NOW + timedelta(hours=7), "alarm")["decisions"]
    assert decision["kind"] in ("rollback", "rollback_kept"), (
        f"the rollback alarm on live 'bad' gave {decision['kind']!r}: {decision['verdict'][:120]}"
    )


# ------------------------------------------------------------------------------------------ clients
def test_a_third_of_clients_echoing_the_canarys_answers_promote_a_canary_two_minutes_worse() -> None:
    """A canary's rider sees the canary's answer (the prediction record's version says which arm). Clients
    who, on the 30 % of their rides the canary got most wrong, report the answer they were given as the
    duration make a canary 2.2 min MAE worse (decisively 'not better' on honest labels) decisively
    'better': it is promoted. A 'not better' on client labels is cross-checked on the trusted evaluation
    set (rollout._backed), a 'better' never is (rollout.py:156-161), though the same set says it is worse.
    (How it reached the canary: an approval, or a shadow undecided at its deadline backed by that set.)"""
    models, capture = MemoryStore(), MemoryStore()
    ports = Ports(models, capture, StaticAlarms({}))
    publish_evaluation_set(models, rides(2000, 2))
    publish_fit(ports, "base")
    publish_fit(ports, "worse", slope=2.4, seed=4)
    base = ModelPointer.from_json(models.objects[version_pointer_key("base")])
    models.put(LIVE_POINTER_KEY, live_document(base, TrafficPlan(canary="worse", canary_share=0.1)))
    write_state(models, {"rollout": {
        "version": "worse", "live_version": "base", "policy": "auto", "started_at": utc_iso(NOW),
        "stage": "canary", "stage_started_at": utc_iso(NOW),
    }})  # fmt: skip

    def echo_worst(true: np.ndarray, served: np.ndarray) -> np.ndarray:
        error = np.abs(served - true)
        return np.where(error >= np.quantile(error, 0.7), served, true)

    serve_rides(ports, "worse", "base", NOW + timedelta(hours=30), 50_000, actual=echo_worst)
    (decision,) = handle(TICK, ports, AUTO, NOW + timedelta(hours=31), "t")["decisions"]
    trusted = better_on_evaluation_set(ports, bundle_of(ports, "worse"), bundle_of(ports, "base"))
    assert decision["kind"] != "promoted", (
        f"{decision['verdict'][:150]}; better on the evaluation set: {trusted}"
    )


# ------------------------------------------------------------------------------------------ stuck, bypass
def test_a_challenger_bundle_that_does_not_load_stalls_every_check_and_retrain_for_good(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """The challenger's bundle object is unreadable as a bundle (the predict function refuses it too, so
    no ride is ever compared). At the stage's deadline _backed loads it (rollout.py:433, load_bundle
    raises BundleError): every scheduled check fails from then on, the stage never decides, and every
    retrain is skipped 'in rollout'; no on-call command ends it (reject needs awaiting_approval, rollback
    to the live version is refused)."""
    ports, _ = drifted
    publish_fit(ports, GOOD)
    rollout.start(ports, AUTO, NOW, {"verdict": "passed the gate", "model_name": "m"}, GOOD)
    pointer = ModelPointer.from_json(mem(ports.models).objects[version_pointer_key(GOOD)])
    mem(ports.models).put(pointer.bundle_key, b"PK\x03\x04 not a bundle")
    outcomes = []
    for hours in (49, 97, 24 * 14):
        at = NOW + timedelta(hours=hours)
        try:
            outcomes += [d["kind"] for d in handle(TICK, ports, AUTO, at, "t")["decisions"]]
        except Exception as exc:
            outcomes.append(type(exc).__name__)
        outcomes += [
            d["kind"]
            for d in handle({"reason": "op", "skip_cooldown": True}, ports, AUTO, at, "op")["decisions"]
        ]
    for event in ({"action": "reject", "version": GOOD}, {"action": "rollback", "version": "1"}):
        outcomes += [
            d["kind"] for d in handle(event, ports, AUTO, NOW + timedelta(days=15), "op")["decisions"]
        ]
    assert rollout.active(read_state(ports.models)) is None, (
        f"still {stage(ports)!r} after 14 days: {outcomes}"
    )


def test_a_forced_retrain_under_auto_goes_live_past_shadow_and_canary(
    drifted: tuple[Ports, FakeTracker],  # noqa: F811
) -> None:
    """retrain._gate (retrain.py:301-309): the staged branch is taken only when the gate passed; a
    force_promote the gate refused falls through to publish_live, so under PROMOTION_POLICY auto/approve
    a forced version serves every ride at once, with no shadow, canary or approval. (Fails at 1a18f92;
    passes since b309430, kept as a regression test.)"""
    ports, _ = drifted
    (good,) = handle({"reason": "test", "params": {"max_iter": 40}}, ports, CONFIG, NOW, "t")["decisions"]
    assert good["kind"] == "promoted", good
    forced = {"reason": "test", "force_promote": True, "skip_cooldown": True, "params": {"max_iter": 1}}
    (decision,) = handle(forced, ports, AUTO, NOW + timedelta(hours=2), "t")["decisions"]
    assert live(ports)[0].version == good["version"], (
        f"forced {decision['version']} is live under auto: {decision['kind']}: {decision['verdict'][:100]}"
    )


# ------------------------------------------------------------------------------------------ on call


@pytest.mark.parametrize(
    "plan, rollout_state",
    [
        ({"shadow": "1"}, None),  # the live version named as its own shadow: PlanError
        ({"canary": "2", "canary_share": 0.9}, None),  # a share over MAX_CANARY_SHARE
        (None, {"stage": "shadow"}),  # the malformed rollout active() already tolerates
    ],
)
def test_make_status_fails_on_what_serving_and_the_loop_tolerate(
    stack: Stack,  # noqa: F811
    plan: dict[str, Any] | None,
    rollout_state: dict[str, Any] | None,
) -> None:
    """infra/operate.py:66 and :79: `make status` calls plan_of unguarded and indexes the state's rollout
    by key. A traffic plan the predict function and the loop refuse and log (model_provider,
    rollout._read_serving) and a rollout active() declares malformed crash the on-call command, exactly
    when the person on call needs it."""
    models = S3Store("models", stack.client("s3"))
    document = {
        "model_name": "m", "version": "1", "bundle_key": "models/m/1/bundle.npz", "bundle_sha256": "a" * 64,
        "profile_key": "models/m/1/reference_profile.json", "validation_rmse": 1.0, "validation_mae": 1.0,
        "run_id": "r", "published_at": "2023-03-06T00:00:00Z",
    }  # fmt: skip
    if plan is not None:
        document["plan"] = plan
    models.put(LIVE_POINTER_KEY, json.dumps(document).encode())
    if rollout_state is not None:
        write_state(models, {"rollout": rollout_state})
    try:
        shown = status(stack)
    except Exception as exc:
        pytest.fail(f"make status raised {type(exc).__name__}: {exc}")
    assert "alarms:" in shown
