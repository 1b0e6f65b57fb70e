"""Review of issue 13: attacks the first implementation let through (each a failing test, or the fix's)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest
from cfnlint.decode import cfn_yaml

from lambda_actuals.handler import handle
from lambda_retrain.audit import read_audit
from lambda_retrain.labelled import load_labelled
from lambda_retrain.loop import handle as handle_retrain
from lambda_retrain.mlflow_rest import MlflowError, MlflowRest, authorization
from lambda_retrain.ports import Ports
from tests.doubles.actuals import actual_record
from tests.doubles.retrain import MemoryStore, StaticAlarms
from tests.unit.test_actuals_service import Stack
from tests.unit.test_actuals_template import TEMPLATE, _writers
from tests.unit.test_iam_template import FUNCTIONS, bucket_denies, role_arn, stack_template, writers
from tests.unit.test_label_attacks import DISTANCES, END, START, TRUTH, honest_day, ride, stack
from tests.unit.test_retrain_loop import CONFIG as LOOP_CONFIG
from tests.unit.test_retrain_loop import capture, drifted, mem, rides
from tests.unit.test_retrain_loop import direct as loop_direct
from tests.unit.test_retrain_triggers import CONFIG, NOW
from tests.unit.test_training_gate import CONFIG as GATE_CONFIG
from tests.unit.test_training_gate import FakeRegistry, Setting, _candidate, setting
from tests.unit.test_training_gate import _yardstick as gate_yardstick
from training.gate import Rides, gate_and_publish
from training.publish import publish_live
from trip_core.bundle import load_bundle
from trip_core.contracts import EVALUATION_POINTER_KEY, LIVE_POINTER_KEY, utc_iso, version_pointer_key
from trip_core.pointer import ModelPointer

__all__ = ["drifted", "setting", "stack"]  # fixtures shared with test_label_attacks and test_retrain_loop


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


def test_no_function_can_write_the_evaluation_set() -> None:
    """The yardstick is trusted because neither serving nor the loop (which reads what clients sent) can
    write it: no function's per-prefix policy allows it, and the models bucket denies it to the loop."""
    template = stack_template()
    functions = {function: role_arn(function) for function in FUNCTIONS}
    assert writers(template, "ModelsBucket", EVALUATION_POINTER_KEY, functions) == set()
    retrain = role_arn("RetrainFunction")
    assert bucket_denies(template, "ModelsBucket", retrain, "s3:PutObject", EVALUATION_POINTER_KEY)


@pytest.mark.parametrize("event", [["retrain"], "retrain", None, 7])
def test_a_direct_invoke_that_is_not_an_object_is_an_audited_refusal(event: Any) -> None:
    """`aws lambda invoke --payload '["retrain"]'` reached `event.get` and crashed the run unaudited."""
    ports = Ports(MemoryStore(), MemoryStore(), StaticAlarms())
    (decision,) = handle_retrain(event, ports, CONFIG, NOW, "t")["decisions"]
    assert decision["kind"] == "invalid_request" and "must be a JSON object" in decision["verdict"]
    (record,) = read_audit(ports.models)
    assert record["kind"] == "invalid_request"


Promotion = Callable[[MemoryStore], None]


class _PromotesMidCheck(MemoryStore):
    """The capture bucket; while the rollback check reads its captures, another run (a retrain holding
    the loop lock) promotes a new version."""

    def __init__(
        self, inner: MemoryStore, models: MemoryStore, promote: Callable[[MemoryStore], None]
    ) -> None:
        super().__init__()
        self.objects, self._models, self._promote = inner.objects, models, promote

    def list_keys(self, prefix: str) -> list[str]:
        promote, self._promote = self._promote, lambda _models: None
        promote(self._models)
        return super().list_keys(prefix)


def _promote_v3(models: MemoryStore) -> None:
    live = ModelPointer.from_json(models.objects[LIVE_POINTER_KEY])
    v3 = replace(live, version="3", published_at=utc_iso(NOW))
    models.put(version_pointer_key("3"), v3.to_json().encode())
    publish_live(models, v3)


def test_a_rollback_check_does_not_undo_a_promotion_made_while_it_ran(drifted: tuple[Ports, Any]) -> None:
    ports, _tracker = drifted
    handle_retrain(loop_direct(), ports, LOOP_CONFIG, NOW, "t")
    later = NOW + timedelta(hours=2)
    forced = loop_direct(skip_cooldown=True, force_promote=True, params={"max_iter": 1})
    (bad,) = handle_retrain(forced, ports, LOOP_CONFIG, later, "t")["decisions"]
    models, captures = mem(ports.models), mem(ports.capture)
    live = ModelPointer.from_json(models.objects[LIVE_POINTER_KEY])
    capture(captures, rides(400, 7), models.objects[live.bundle_key], bad["version"], later, 10_000)
    racing = replace(ports, capture=_PromotesMidCheck(captures, models, _promote_v3))
    check = loop_direct(action="rollback_check")
    (decision,) = handle_retrain(check, racing, LOOP_CONFIG, later + timedelta(minutes=30), "t")["decisions"]
    assert ModelPointer.from_json(models.objects[LIVE_POINTER_KEY]).version == "3", decision["verdict"]


def test_only_the_predict_function_writes_captures() -> None:
    """Captures say which prediction ids exist (the actuals function accepts an actual naming one) and
    with which inputs: the monitor's S3CrudPolicy on the capture bucket could write or delete them."""
    template = dict(cfn_yaml.load(str(TEMPLATE)))
    assert _writers(template, "captures/dt=2023-03-06/hour=14/shardId-1_2.json.gz") == {"PredictFunctionRole"}


def test_a_first_model_fitted_to_forged_labels_is_refused_on_the_evaluation_set(setting: Setting) -> None:
    bundles, rides = setting
    weak = load_bundle(bundles["weak"])
    forged = Rides(rides.features, weak.predict(rides.features), rides.pickup)  # labels that suit it
    true_month = Rides(rides.features, rides.target + 30.0, rides.pickup)  # far from what it predicts
    decision = gate_and_publish(
        _candidate("1", bundles["weak"], forged), FakeRegistry({}, None), None, forged,
        GATE_CONFIG, gate_yardstick(true_month),
    )  # fmt: skip
    assert not decision.promote, decision.verdict


class _Redirecting(BaseHTTPRequestHandler):
    """A tracking server (or what answers in its place) redirecting elsewhere; the other end records
    the Authorization headers it is sent."""

    target = ""
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        if self.path.startswith("/elsewhere"):
            _Redirecting.seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(302)
        self.send_header("Location", f"{self.target}/elsewhere")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
        pass


@pytest.fixture
def redirecting() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Redirecting.target, _Redirecting.seen = f"http://127.0.0.1:{server.server_address[1]}", []
    yield _Redirecting.target
    server.shutdown()
    server.server_close()


def test_the_mlflow_credentials_do_not_follow_a_redirect(redirecting: str) -> None:
    """urllib re-sends every header of a request to wherever a 30x points (another host, or plain
    http after https): the MLflow REST API never redirects, so a redirect is an error, not a hop."""
    client = MlflowRest(redirecting, "exp", authorization({"token": "t0k"}))
    with pytest.raises(MlflowError, match="302"):
        client.experiment_id()
    assert _Redirecting.seen == []


def test_a_client_labelling_its_own_rides_cannot_roll_back_a_promotion_the_evaluation_set_backs(
    drifted: tuple[Ports, Any],
) -> None:
    ports, _tracker = drifted
    (good,) = handle_retrain(loop_direct(), ports, LOOP_CONFIG, NOW, "t")["decisions"]
    assert good["kind"] == "promoted"
    models = mem(ports.models)
    live = ModelPointer.from_json(models.objects[LIVE_POINTER_KEY])
    old_relation = rides(400, 8, slope=1.0)  # the attacker's own rides, labelled as the champion predicts
    capture(mem(ports.capture), old_relation, models.objects[live.bundle_key], good["version"],
            NOW + timedelta(minutes=5), 20_000)  # fmt: skip
    check = loop_direct(action="rollback_check")
    (decision,) = handle_retrain(check, ports, LOOP_CONFIG, NOW + timedelta(minutes=30), "t")["decisions"]
    assert decision["kind"] != "rollback", decision["verdict"]
