"""The closed loop's decisions with in-memory stores and a fake MLflow: guards, gate, rollback, audit."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from infra.audit_table import main as audit_table
from lambda_retrain.audit import read_audit
from lambda_retrain.config import RetrainConfig
from lambda_retrain.guards import acquire_lock, lock_holder
from lambda_retrain.loop import handle
from lambda_retrain.ports import Ports, Store
from lambda_retrain.rollback import Judgement, RollbackResult, rollback_check
from lambda_retrain.triggers import direct_trigger, triggers_from_event
from tests.doubles.captures import capture_objects, live_pickups, pid, pids
from tests.doubles.predict import tiny_bundle
from tests.doubles.retrain import MemoryStore, StaticAlarms
from training import evaluation_set
from training.export import export_bundle
from training.model import ModelParams, fit
from training.pipeline import Rows, TrainedCandidate, decode_rows, encode_rows
from training.publish import publish_live, publish_version
from trip_core.bundle import load_bundle
from trip_core.capture import Actual, CaptureBatch, encode_actuals
from trip_core.contracts import (
    EVALUATION_POINTER_KEY,
    LIVE_POINTER_KEY,
    LOOP_LOCK_KEY,
    LOOP_STATE_KEY,
    actuals_key,
    bundle_key,
    profile_key,
    training_rows_key,
    utc_iso,
)
from trip_core.features import compute_features
from trip_core.pointer import ModelPointer
from trip_core.zones import zone_table

NOW = datetime(2024, 5, 6, 12, 30, tzinfo=UTC)
CONFIG = RetrainConfig(
    models_bucket="models",
    capture_bucket="capture",
    model_name="m",
    target_rows=8000,
    max_lookback_days=3,  # the served rides span 70 h: the holdout (latest 20 %) spans the rule's MIN_HOURS
    min_labelled_rows=300,
    cooldown_minutes=60,
    min_rollback_rows=50,
    retrain_alarms=("td-drift-share",),
    rollback_alarms=("td-mae-ratio",),
    allow_force_promote=True,
)
FAST = ModelParams(max_iter=40)


class FakeTracker:
    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, str]] = {}
        self.aliases: dict[str, str] = {}
        self.artifacts: dict[str, bytes] = {}

    def start_run(self, name: str, params: dict[str, str], tags: dict[str, str]) -> str:
        run_id = f"run{len(self.runs) + 1}"
        self.runs[run_id] = {"params": params, "tags": tags}
        return run_id

    def finish_run(self, run_id: str, metrics: dict[str, float]) -> None:
        self.runs[run_id]["metrics"] = metrics

    def upload_artifact(self, run_id: str, path: str, body: bytes) -> None:
        self.artifacts[f"{run_id}/{path}"] = body

    def register_version(self, model_name: str, run_id: str, tags: dict[str, str]) -> str:
        version = str(len(self.versions) + 10)
        self.versions[version] = dict(tags)
        return version

    def set_version_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        self.versions.setdefault(version, {}).update(tags)

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        self.aliases[alias] = version


def rides(n: int, seed: int, slope: float = 3.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(zone_table().location_ids))[:60]
    pu, do = rng.choice(ids, n), rng.choice(ids, n)
    distance = rng.uniform(0.3, 12, n).round(2)
    pickup = np.datetime64("2023-03-01T00:00:00") + np.sort(rng.integers(0, 30 * 86400, n)).astype(
        "timedelta64[s]"
    )
    duration = np.clip(4 + slope * distance + rng.normal(0, 2, n) + (pu % 7), 1, 60)
    return {"pu": pu, "do": do, "distance": distance, "pickup": pickup, "duration": duration}


def features(r: dict[str, np.ndarray]) -> np.ndarray:
    return compute_features(r["pu"], r["do"], r["distance"], r["pickup"])


def publish_model(
    store: MemoryStore, version: str, r: dict[str, np.ndarray], params: ModelParams = FAST
) -> bytes:
    body = export_bundle(fit(features(r), r["duration"], params), {"model_name": "m"})
    pred = load_bundle(body).predict(features(r))
    pointer = ModelPointer(
        "m",
        version,
        bundle_key("m", version),
        load_bundle(body).sha256,
        profile_key("m", version),
        float(np.sqrt(np.mean((pred - r["duration"]) ** 2))),
        float(np.mean(np.abs(pred - r["duration"]))),
        f"run-{version}",
        utc_iso(NOW - timedelta(days=30)),
    )
    publish_version(store, pointer, body, b"{}")
    publish_live(store, pointer)
    return body


def capture(
    store: MemoryStore,
    r: dict[str, np.ndarray],
    bundle: bytes,
    version: str,
    at: datetime,
    first_id: int,
    span_hours: float = 20,
) -> None:
    """Rides served live by `version`, picked up over the `span_hours` before `at` (captured at `at`)."""
    r = {**r, "pickup": live_pickups(len(r["pu"]), at, int(span_hours * 3600))}
    pred = load_bundle(bundle).predict(features(r))
    ids: list[int | str] = list(range(first_id, first_id + len(pred)))
    for start in range(0, len(ids), 100):
        part = slice(start, start + 100)
        batch = CaptureBatch(
            "m",
            version,
            utc_iso(at),
            pids(ids[part]),
            ids[part],
            [str(p) for p in r["pickup"][part]],
            [int(v) for v in r["pu"][part]],
            [int(v) for v in r["do"][part]],
            [float(v) for v in r["distance"][part]],
            [float(v) for v in pred[part]],
        )
        for key, body in capture_objects(batch, "shard-0", f"{first_id + start}").items():
            store.put(key, body)
    actuals = [Actual(pid(i), float(d)) for i, d in zip(ids, r["duration"], strict=True)]
    store.put(actuals_key(at, str(first_id)), encode_actuals(actuals))


@pytest.fixture
def drifted() -> tuple[Ports, FakeTracker]:
    """Champion v1 learned an old relation (slope 1); the recent labelled rides follow slope 3."""
    models, capture_store, tracker = MemoryStore(), MemoryStore(), FakeTracker()
    bundle = publish_model(models, "1", rides(3000, 0, slope=1.0))
    capture(capture_store, rides(1500, 1), bundle, "1", NOW - timedelta(hours=1), 0, span_hours=70)
    publish_evaluation_set(models, rides(2000, 2))
    alarms = StaticAlarms({"td-drift-share": "ALARM", "td-mae-ratio": "ALARM"})
    return Ports(models, capture_store, alarms, tracker), tracker


def publish_evaluation_set(store: MemoryStore, r: dict[str, np.ndarray]) -> None:
    """The trusted month: rides of the true (current) relation."""
    evaluation_set.publish(store, "2023-03", evaluation_set.encode(features(r), r["duration"], r["pickup"]))


def promote_and_serve(ports: Ports) -> str:
    """A loop promotion, then 400 labelled rides its version serves five minutes later; the version."""
    (good,) = handle(direct(), ports, CONFIG, NOW, "t")["decisions"]
    live = ModelPointer.from_json(mem(ports.models).objects[LIVE_POINTER_KEY])
    bundle = mem(ports.models).objects[live.bundle_key]
    capture(mem(ports.capture), rides(400, 8), bundle, good["version"], NOW + timedelta(minutes=5), 20_000)
    return str(good["version"])


def mem(store: Store) -> MemoryStore:
    assert isinstance(store, MemoryStore)
    return store


def direct(**kwargs: Any) -> dict[str, Any]:
    return {"reason": "test", "params": {"max_iter": 40}, **kwargs}


def test_drift_alarm_retrains_and_promotes_a_better_challenger(drifted: tuple[Ports, FakeTracker]) -> None:
    ports, tracker = drifted
    sns = {
        "Records": [
            {"Sns": {"Message": json.dumps({"AlarmName": "td-drift-share", "NewStateValue": "ALARM"})}}
        ]
    }
    event = {**sns}
    config = CONFIG
    (decision,) = handle(event, ports, config, NOW, "test")["decisions"]
    assert decision["kind"] == "promoted", decision["verdict"]
    metrics = decision["metrics"]
    assert metrics["challenger_holdout_mae"] < metrics["champion_holdout_mae"]
    live = ModelPointer.from_json(mem(ports.models).objects[LIVE_POINTER_KEY])
    assert live.version == decision["version"] == "10" and tracker.aliases["production"] == "10"
    assert {live.bundle_key, live.profile_key, "serving/versions/10.json"} <= set(mem(ports.models).objects)
    # the reference profile is out of sample: the holdout rows the challenger was gated on
    assert (
        json.loads(mem(ports.models).objects[live.profile_key])["n_rows"] == decision["data"]["holdout_rows"]
    )
    assert decision["data"]["holdout_rows"] == 300 and decision["data"]["labelled_rows"] == 1500
    assert tracker.versions["10"]["gate.promoted"] == "true"
    assert tracker.versions["10"]["loop.last_decision"] == "promoted"
    assert "run1/bundle/bundle.npz" in tracker.artifacts
    state = json.loads(mem(ports.models).objects[LOOP_STATE_KEY])
    assert state["last_promotion"] == {
        "version": "10",
        "previous_version": "1",
        "promoted_at": utc_iso(NOW),
        "forced": False,
    }
    assert lock_holder(mem(ports.models).objects.get(LOOP_LOCK_KEY), NOW) is None  # released
    (record,) = read_audit(ports.models)
    assert record["kind"] == "promoted" and record["trigger"]["alarm_name"] == "td-drift-share"
    assert decision["data"]["champion_rows"] == 0  # v1 left no training rows: the recent rows alone
    kept = decode_rows(mem(ports.models).objects[training_rows_key("m", "10")])
    assert len(kept) == decision["data"]["train_rows"]


def test_the_champions_training_rows_are_mixed_in_with_the_recent_rows_weighing_more(
    drifted: tuple[Ports, FakeTracker],
) -> None:
    ports, _ = drifted
    old = rides(8000, 5, slope=1.0)
    body = encode_rows(Rows(features(old), old["duration"], old["pickup"].astype("datetime64[D]")))
    ports.models.put(training_rows_key("m", "1"), body, "application/octet-stream")
    (decision,) = handle(direct(), ports, CONFIG, NOW, "test")["decisions"]
    data = decision["data"]
    assert data["champion_rows"] == 8000 and data["recent_weight"] == 8000 / CONFIG.target_rows
    kept = decode_rows(mem(ports.models).objects[training_rows_key("m", decision["version"])])
    assert len(kept) == 8000 + data["train_rows"]  # the next retrain mixes in what this one fitted
    assert kept.pickup_day is not None and kept.pickup_day[-1] > kept.pickup_day[0]


def test_refused_when_the_champion_is_better(drifted: tuple[Ports, FakeTracker]) -> None:
    ports, _ = drifted
    recent = rides(1500, 1)
    publish_model(mem(ports.models), "2", recent, ModelParams(max_iter=200))  # knows the holdout too
    (decision,) = handle(direct(), ports, CONFIG, NOW, "test")["decisions"]
    assert decision["kind"] == "refused" and decision["verdict"].startswith("refused: holdout not better")
    assert ModelPointer.from_json(mem(ports.models).objects[LIVE_POINTER_KEY]).version == "2"
    assert "serving/versions/10.json" in mem(ports.models).objects  # registered, published, not live


def test_guards_cooldown_lock_and_min_rows(drifted: tuple[Ports, FakeTracker]) -> None:
    ports, _ = drifted
    assert handle(direct(), ports, CONFIG, NOW, "t")["decisions"][0]["kind"] == "promoted"
    later = NOW + timedelta(minutes=10)
    (skip,) = handle(direct(), ports, CONFIG, later, "t")["decisions"]
    assert skip["kind"] == "skipped" and "cooldown" in skip["verdict"]
    assert acquire_lock(ports.models, later, 960, "someone else")
    (locked,) = handle(direct(skip_cooldown=True), ports, CONFIG, later, "t")["decisions"]
    assert "lock" in locked["verdict"]
    assert acquire_lock(ports.models, later + timedelta(seconds=961), 960, "after the lease")  # expired lease
    mem(ports.models).objects.pop(LOOP_LOCK_KEY)
    strict = RetrainConfig(**{**CONFIG.__dict__, "min_labelled_rows": 5000})
    (few,) = handle(direct(skip_cooldown=True), ports, strict, later, "t")["decisions"]
    assert few["kind"] == "skipped" and "1500 labelled rows within" in few["verdict"]
    assert "< MIN_LABELLED_ROWS 5000" in few["verdict"]
    kinds = [r["kind"] for r in read_audit(ports.models)]
    assert kinds == ["promoted", "skipped", "skipped", "skipped"]
    table = audit_table([], store=ports.models)
    assert len(table.splitlines()) == 2 + 4 and "cooldown" in table


def test_sns_ok_and_unknown_alarms_are_ignored() -> None:
    def sns(name: str, state: str) -> dict[str, Any]:
        return {"Sns": {"Message": json.dumps({"AlarmName": name, "NewStateValue": state})}}

    event = {
        "Records": [
            sns("td-drift-share", "OK"),
            sns("td-rejected-share", "ALARM"),
            sns("td-mae-ratio", "ALARM"),
        ]
    }
    (trigger,) = triggers_from_event(event, CONFIG)
    assert (trigger.action, trigger.source, trigger.alarm_name) == ("rollback_check", "alarm", "td-mae-ratio")
    assert handle(
        {"Records": [sns("td-drift-share", "OK")]},
        Ports(MemoryStore(), MemoryStore(), StaticAlarms()),
        CONFIG,
        NOW,
        "t",
    )["ignored"]


def test_forced_bad_promotion_is_rolled_back_on_the_mae_alarm(drifted: tuple[Ports, FakeTracker]) -> None:
    ports, tracker = drifted
    (good,) = handle(direct(), ports, CONFIG, NOW, "t")["decisions"]
    later = NOW + timedelta(hours=2)
    (bad,) = handle(
        direct(skip_cooldown=True, force_promote=True, params={"max_iter": 1}), ports, CONFIG, later, "t"
    )["decisions"]
    assert bad["kind"] == "promoted" and bad["verdict"].startswith("forced")
    live = ModelPointer.from_json(mem(ports.models).objects[LIVE_POINTER_KEY])
    assert live.version == bad["version"]
    served = rides(400, 7)
    capture(
        mem(ports.capture),
        served,
        mem(ports.models).objects[live.bundle_key],
        live.version,
        later + timedelta(minutes=5),
        10_000,
    )
    alarm = {
        "Records": [{"Sns": {"Message": json.dumps({"AlarmName": "td-mae-ratio", "NewStateValue": "ALARM"})}}]
    }
    (decision,) = handle(alarm, ports, CONFIG, later + timedelta(minutes=30), "t")["decisions"]
    assert decision["kind"] == "rollback", decision["verdict"]
    assert decision["metrics"]["live_mae"] > decision["metrics"]["previous_mae"]
    assert ModelPointer.from_json(mem(ports.models).objects[LIVE_POINTER_KEY]).version == good["version"]
    assert tracker.aliases["production"] == good["version"]
    # a second MAE alarm: the rolled-back promotion is not judged again; the quality alarm retrains (cooldown)
    (again,) = handle(alarm, ports, CONFIG, later + timedelta(minutes=40), "t")["decisions"]
    assert again["kind"] == "skipped" and "cooldown" in again["verdict"]


def test_good_promotion_is_kept_and_without_mlflow_versions_come_from_s3(
    drifted: tuple[Ports, FakeTracker],
) -> None:
    ports, _ = drifted
    ports.tracker = None
    (good,) = handle(direct(), ports, CONFIG, NOW, "t")["decisions"]
    assert good["version"] == f"loop-{NOW:%Y%m%dT%H%M%SZ}"  # never a number: never one of MLflow's
    assert "S3 only" in read_audit(ports.models)[0]["mlflow"]
    live = ModelPointer.from_json(mem(ports.models).objects[LIVE_POINTER_KEY])
    capture(
        mem(ports.capture),
        rides(400, 8),
        mem(ports.models).objects[live.bundle_key],
        good["version"],
        NOW + timedelta(minutes=5),
        20_000,
    )
    (kept,) = handle(direct(action="rollback_check"), ports, CONFIG, NOW + timedelta(minutes=30), "t")[
        "decisions"
    ]
    assert kept["kind"] == "rollback_kept" and kept["verdict"].startswith("kept: better")


def test_scheduled_check_rolls_back_a_bad_promotion_without_an_alarm(
    drifted: tuple[Ports, FakeTracker],
) -> None:
    """The schedule judges the last loop promotion by itself; with nothing (or too little) to judge it
    records nothing, so an hourly check does not fill the audit."""
    ports, _ = drifted
    ports.alarms = StaticAlarms({"td-drift-share": "OK", "td-mae-ratio": "OK"})
    scheduled = {"action": "rollback_check", "source": "schedule", "reason": "scheduled"}
    assert handle(scheduled, ports, CONFIG, NOW, "t")["decisions"] == []  # no loop promotion yet
    good = promote_and_serve(ports)
    (kept,) = handle(scheduled, ports, CONFIG, NOW + timedelta(minutes=30), "t")["decisions"]
    assert kept["kind"] == "rollback_kept" and kept["verdict"].startswith("kept: better")
    assert handle(scheduled, ports, CONFIG, NOW + timedelta(minutes=31), "t")["decisions"] == []  # once
    later = NOW + timedelta(hours=2)
    (bad,) = handle(
        direct(skip_cooldown=True, force_promote=True, params={"max_iter": 1}), ports, CONFIG, later, "t"
    )["decisions"]
    audited = len(read_audit(ports.models))
    assert handle(scheduled, ports, CONFIG, later + timedelta(minutes=1), "t")["decisions"] == []  # no rides
    assert len(read_audit(ports.models)) == audited
    live = ModelPointer.from_json(mem(ports.models).objects[LIVE_POINTER_KEY])
    capture(
        mem(ports.capture),
        rides(400, 9),
        mem(ports.models).objects[live.bundle_key],
        bad["version"],
        later + timedelta(minutes=5),
        30_000,
    )
    (decision,) = handle(scheduled, ports, CONFIG, later + timedelta(minutes=30), "t")["decisions"]
    assert decision["kind"] == "rollback"
    assert read_audit(ports.models)[-1]["trigger"]["source"] == "schedule"
    assert ModelPointer.from_json(mem(ports.models).objects[LIVE_POINTER_KEY]).version == good


def test_a_rollback_check_without_a_loop_promotion_says_so_explicitly(
    drifted: tuple[Ports, FakeTracker],
) -> None:
    ports, _ = drifted
    trigger = direct_trigger(direct(action="rollback_check"), CONFIG)
    result = rollback_check(trigger, ports, CONFIG, NOW, "t")
    assert result == RollbackResult(Judgement.NO_RECENT_PROMOTION)
    (kept,) = handle(direct(action="rollback_check"), ports, CONFIG, NOW, "t")["decisions"]
    assert (
        kept["kind"] == "rollback_kept"
        and kept["verdict"] == "kept: no loop promotion within the rollback window"
    )


def test_retrained_rows_carry_their_pickup_days_so_the_profile_measures_day_variation() -> None:
    from lambda_retrain.labelled import LabelledRides
    from lambda_retrain.retrain import _rows

    pickup = np.array(["2023-03-06T23:59:59", "2023-03-07T00:00:00"], dtype="datetime64[s]")
    versions = np.array(["1", "1"], dtype=object)
    rides = LabelledRides(
        np.zeros((2, 12)), np.ones(2), np.ones(2), versions, pickup, np.full(2, np.nan), np.array(["", ""])
    )
    days = _rows(rides).pickup_day
    assert days is not None and [str(d) for d in days] == ["2023-03-06", "2023-03-07"]


class DownTracker(FakeTracker):
    """MLflow down: registering the fitted candidate fails."""

    def start_run(self, name: str, params: dict[str, str], tags: dict[str, str]) -> str:
        raise ConnectionError("MLflow unreachable")


def test_a_failed_retrain_is_audited_counts_toward_the_cooldown_and_frees_the_lock(
    drifted: tuple[Ports, FakeTracker],
) -> None:
    ports, _ = drifted
    ports.tracker = DownTracker()
    alarm = {
        "Records": [
            {"Sns": {"Message": json.dumps({"AlarmName": "td-drift-share", "NewStateValue": "ALARM"})}}
        ]
    }
    with pytest.raises(ConnectionError, match="MLflow unreachable"):
        handle(alarm, ports, CONFIG, NOW, "t")
    (failed,) = read_audit(ports.models)
    assert failed["kind"] == "failed" and failed["error"] == "ConnectionError: MLflow unreachable"
    assert failed["trigger"]["alarm_name"] == "td-drift-share"
    assert json.loads(mem(ports.models).objects[LOOP_STATE_KEY])["last_retrain_at"] == utc_iso(NOW)
    assert lock_holder(mem(ports.models).objects.get(LOOP_LOCK_KEY), NOW) is None  # released
    (again,) = handle(alarm, ports, CONFIG, NOW + timedelta(minutes=1), "t")["decisions"]
    assert again["kind"] == "skipped" and "cooldown" in again["verdict"]  # no second fit


def test_the_schedule_retrains_while_a_retrain_alarm_stays_in_alarm(
    drifted: tuple[Ports, FakeTracker],
) -> None:
    """The drift alarm's one notification came when too few rides were labelled; it stays in ALARM
    (no new notification), and the scheduled tick retrains once there are enough, after the cooldown."""
    ports, _ = drifted
    alarm = {
        "Records": [
            {"Sns": {"Message": json.dumps({"AlarmName": "td-drift-share", "NewStateValue": "ALARM"})}}
        ]
    }
    strict = RetrainConfig(**{**CONFIG.__dict__, "min_labelled_rows": 5000})
    (few,) = handle(alarm, ports, strict, NOW, "t")["decisions"]
    assert few["kind"] == "skipped" and "MIN_LABELLED_ROWS" in few["verdict"]
    scheduled = {"action": "rollback_check", "source": "schedule", "reason": "scheduled"}
    ports.alarms = StaticAlarms({"td-drift-share": "OK"})
    assert handle(scheduled, ports, CONFIG, NOW + timedelta(minutes=1), "t")["decisions"] == []
    ports.alarms = StaticAlarms({"td-drift-share": "ALARM"})
    (healed,) = handle(scheduled, ports, CONFIG, NOW + timedelta(minutes=2), "t")["decisions"]
    assert healed["kind"] == "promoted"
    assert read_audit(ports.models)[-1]["trigger"]["reason"] == "scheduled: td-drift-share still in ALARM"
    # within the cooldown the tick stays quiet: it neither fits nor records a skip every hour
    assert handle(scheduled, ports, CONFIG, NOW + timedelta(minutes=3), "t")["decisions"] == []


def test_force_promote_needs_the_stack_parameter(drifted: tuple[Ports, FakeTracker]) -> None:
    ports, _ = drifted
    closed = RetrainConfig(**{**CONFIG.__dict__, "allow_force_promote": False})
    (refused,) = handle(direct(force_promote=True), ports, closed, NOW, "t")["decisions"]
    assert refused["kind"] == "invalid_request" and "AllowForcePromote" in refused["verdict"]
    assert ModelPointer.from_json(mem(ports.models).objects[LIVE_POINTER_KEY]).version == "1"
    assert LOOP_STATE_KEY not in mem(ports.models).objects  # nothing ran


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("delete_pointer", "no evaluation set published"),
        ("delete_set", "is missing"),
        ("tamper_set", "is not the pointer's"),
        ("garble_pointer", "is not a valid pointer"),
    ],
)
def test_an_unusable_evaluation_set_refuses_the_challenger(
    drifted: tuple[Ports, FakeTracker], damage: str, reason: str
) -> None:
    """Fails closed: without its trusted yardstick the gate promotes nothing, and says why."""
    ports, _ = drifted
    store = mem(ports.models)
    key = json.loads(store.objects[EVALUATION_POINTER_KEY])["key"]
    if damage == "delete_pointer":
        del store.objects[EVALUATION_POINTER_KEY]
    elif damage == "delete_set":
        del store.objects[key]
    elif damage == "tamper_set":
        store.objects[key] += b"x"
    else:
        store.objects[EVALUATION_POINTER_KEY] = b"{}"
    (decision,) = handle(direct(), ports, CONFIG, NOW, "t")["decisions"]
    assert decision["kind"] == "refused" and decision["verdict"].startswith(
        "refused: evaluation set unusable"
    )
    assert reason in decision["verdict"]
    assert ModelPointer.from_json(store.objects[LIVE_POINTER_KEY]).version == "1"
    assert read_audit(ports.models)[-1]["kind"] == "refused"


def test_an_unreadable_champion_refuses_the_challenger(drifted: tuple[Ports, FakeTracker]) -> None:
    ports, _ = drifted
    store = mem(ports.models)
    store.objects[ModelPointer.from_json(store.objects[LIVE_POINTER_KEY]).bundle_key] = b"garbage"
    (decision,) = handle(direct(), ports, CONFIG, NOW, "t")["decisions"]
    assert decision["kind"] == "refused"
    assert decision["verdict"].startswith("refused: champion version 1 cannot be scored")
    assert ModelPointer.from_json(store.objects[LIVE_POINTER_KEY]).version == "1"


def test_a_judged_promotion_is_not_re_tested(drifted: tuple[Ports, FakeTracker]) -> None:
    """Decided once: after a decisive keep, a later alarm does not judge the same promotion again."""
    ports, _ = drifted
    promote_and_serve(ports)
    trigger = direct_trigger(direct(action="rollback_check"), CONFIG)
    first = rollback_check(trigger, ports, CONFIG, NOW + timedelta(minutes=30), "t")
    assert first.judgement == Judgement.DECIDED
    assert json.loads(mem(ports.models).objects[LOOP_STATE_KEY])["last_promotion"]["judged_at"]
    again = rollback_check(trigger, ports, CONFIG, NOW + timedelta(hours=3), "t")
    assert again == RollbackResult(Judgement.ALREADY_KEPT)


@pytest.mark.parametrize("force_promote", [False, True])
def test_a_retrained_bundle_failing_its_smoke_test_is_refused_audited_and_never_published(
    drifted: tuple[Ports, FakeTracker], monkeypatch: pytest.MonkeyPatch, force_promote: bool
) -> None:
    """An exporter bug that ships a bundle answering -999,997 min (its parity check fooled): the decision is
    `refused`, audited with the reason, nothing of the version is published, the live pointer stays, and
    a forced promotion cannot override it."""
    import lambda_retrain.retrain as retrain_module

    wrong = tiny_bundle(base=-1_000_000.0)
    real = retrain_module.train_candidate

    def exported_wrong(*args: Any, **kwargs: Any) -> TrainedCandidate:
        trained = real(*args, **kwargs)
        return replace(trained, bundle=wrong, bundle_sha256=hashlib.sha256(wrong).hexdigest())

    monkeypatch.setattr(retrain_module, "train_candidate", exported_wrong)
    ports, tracker = drifted
    (decision,) = handle(direct(force_promote=force_promote), ports, CONFIG, NOW, "t")["decisions"]
    assert decision["kind"] == "refused", decision["verdict"]
    assert decision["verdict"].startswith(
        "refused: the challenger's bundle is not fit to serve (BundleRefused"
    )
    assert "-999997.0 min" in decision["verdict"]
    (record,) = read_audit(ports.models)
    assert record["kind"] == "refused" and record["verdict"] == decision["verdict"]
    assert record["promoted"] is False and record["version"] == decision["version"]
    store = mem(ports.models)
    assert ModelPointer.from_json(store.objects[LIVE_POINTER_KEY]).version == "1"
    assert not {f"serving/versions/{decision['version']}.json", bundle_key("m", decision["version"])} & set(
        store.objects
    )
    assert tracker.aliases.get("production") != decision["version"]
    assert tracker.versions[decision["version"]]["loop.last_decision"] == "refused"
