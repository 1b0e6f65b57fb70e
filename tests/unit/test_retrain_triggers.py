"""The loop's guards and what it believes: the lock's conditional writes (a race of two takers of an
expired lease), forged alarm notifications, refused direct invokes, the MLflow URI and credentials."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from lambda_retrain.audit import read_audit
from lambda_retrain.config import RetrainConfig
from lambda_retrain.guards import acquire_lock, lock_holder, release_lock
from lambda_retrain.loop import handle
from lambda_retrain.mlflow_rest import MlflowRest, authorization, env_credentials
from lambda_retrain.ports import Ports, Store
from tests.doubles.retrain import MemoryStore, StaticAlarms, race_for_an_expired_lease
from training.model import ModelParams
from trip_core.config import ConfigError
from trip_core.contracts import LOOP_LOCK_KEY, MODEL_PARAM_BOUNDS

NOW = datetime(2024, 5, 6, 12, 30, tzinfo=UTC)
CONFIG = RetrainConfig(
    models_bucket="models",
    capture_bucket="capture",
    model_name="m",
    retrain_alarms=("td-drift-share",),
    rollback_alarms=("td-mae-ratio",),
)
ENV = {"MODELS_BUCKET": "models", "CAPTURE_BUCKET": "capture"}


def test_of_two_takers_of_an_expired_lease_exactly_one_wins() -> None:
    store = MemoryStore()
    first, rival = race_for_an_expired_lease(store, NOW)
    assert first is None and rival is not None
    assert json.loads(store.objects[LOOP_LOCK_KEY])["owner"] == "rival"


def test_a_non_holder_release_leaves_the_lock() -> None:
    store = MemoryStore()
    stale = acquire_lock(store, NOW, 60, "stale")
    assert stale is not None
    holder = acquire_lock(store, NOW + timedelta(seconds=61), 60, "holder")  # took the expired lease
    assert holder is not None and not release_lock(store, stale, NOW + timedelta(seconds=61))
    assert json.loads(store.objects[LOOP_LOCK_KEY])["owner"] == "holder"
    assert acquire_lock(store, NOW + timedelta(seconds=62), 60, "third") is None  # a live lease holds
    assert release_lock(store, holder, NOW + timedelta(seconds=63))
    assert lock_holder(store.objects[LOOP_LOCK_KEY], NOW + timedelta(seconds=63)) is None
    assert acquire_lock(store, NOW + timedelta(seconds=64), 60, "next") is not None  # a released lease


def sns(name: str, state: str = "ALARM") -> dict[str, Any]:
    return {"Records": [{"Sns": {"Message": json.dumps({"AlarmName": name, "NewStateValue": state})}}]}


@pytest.mark.parametrize("described", ["OK", "INSUFFICIENT_DATA", None])
def test_a_notification_claiming_alarm_is_ignored_unless_cloudwatch_agrees(described: str | None) -> None:
    states = {} if described is None else {"td-drift-share": described, "td-mae-ratio": described}
    ports = Ports(MemoryStore(), MemoryStore(), StaticAlarms(states))
    for name in ("td-drift-share", "td-mae-ratio"):
        (decision,) = handle(sns(name), ports, CONFIG, NOW, "t")["decisions"]
        assert decision["kind"] == "ignored"
        assert f"DescribeAlarms says {described or 'not found'}" in decision["verdict"]
    records = read_audit(ports.models)
    assert [r["kind"] for r in records] == ["ignored", "ignored"]
    assert records[0]["trigger"]["alarm_name"] == "td-drift-share"
    assert not [k for k in mem(ports.models).objects if not k.startswith("loop/audit/")]  # nothing else


def mem(store: Store) -> MemoryStore:
    assert isinstance(store, MemoryStore)
    return store


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"force_promote": True}, "force_promote is not allowed on this stack"),
        ({"params": {"max_itr": 3}}, "unknown param 'max_itr'"),
        ({"params": {"max_iter": "30"}}, "param max_iter must be int in [1, 2000]"),
        ({"params": {"max_iter": 1.5}}, "param max_iter must be int"),
        ({"params": {"learning_rate": 5}}, "param learning_rate must be float in [0.001, 1]"),
        ({"params": {"max_iter": True}}, "param max_iter must be int"),
        ({"params": [1]}, "params must be an object"),
        ({"skip_cooldown": "yes"}, "skip_cooldown must be true or false"),
        ({"action": "delete_everything"}, "action must be one of"),
        ({"source": "alarm"}, "source must be one of"),
        ({"reason": {"x": 1}}, "reason must be a text"),
        ({"promote": True}, "unknown key(s) ['promote']"),
    ],
)
def test_a_bad_direct_invoke_is_an_audited_refusal_not_a_crash(event: dict[str, Any], says: str) -> None:
    ports = Ports(MemoryStore(), MemoryStore(), StaticAlarms())
    (decision,) = handle(event, ports, CONFIG, NOW, "t")["decisions"]
    assert decision["kind"] == "invalid_request" and says in decision["verdict"], decision["verdict"]
    (record,) = read_audit(ports.models)
    assert record["kind"] == "invalid_request" and json.loads(record["request"]) == event


def test_the_param_list_is_model_params_with_its_types() -> None:
    defaults = ModelParams()
    assert set(MODEL_PARAM_BOUNDS) == {f.name for f in fields(ModelParams)}
    for name, (kind, low, high) in MODEL_PARAM_BOUNDS.items():
        assert isinstance(getattr(defaults, name), kind) and low <= getattr(defaults, name) <= high


def test_force_promote_and_its_stack_parameter() -> None:
    assert not RetrainConfig.from_env(ENV).allow_force_promote
    assert RetrainConfig.from_env({**ENV, "ALLOW_FORCE_PROMOTE": "true"}).allow_force_promote
    with pytest.raises(ConfigError, match="ALLOW_FORCE_PROMOTE must be true or false"):
        RetrainConfig.from_env({**ENV, "ALLOW_FORCE_PROMOTE": "yes"})


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://mlflow.internal.example", True),
        ("http://127.0.0.1:5000", True),
        ("http://localhost:5000", True),
        ("http://mlflow.internal.example:5000", False),
        ("http://10.0.3.7", False),
    ],
)
def test_a_remote_tracking_uri_must_be_https(uri: str, ok: bool) -> None:
    env = {**ENV, "MLFLOW_TRACKING_URI": uri}
    if ok:
        assert RetrainConfig.from_env(env).mlflow_tracking_uri == uri
    else:
        with pytest.raises(ConfigError, match="plain http to a remote host: use https://"):
            RetrainConfig.from_env(env)


class AuthStub(BaseHTTPRequestHandler):
    """MLflow's experiments API behind auth: 401 without the expected Authorization header."""

    expected = ""
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:  # http.server's name
        self.seen.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != self.expected:
            self._answer(401, {"error_code": "UNAUTHENTICATED", "message": "credentials required"})
            return
        self._answer(200, {"experiment": {"experiment_id": "7"}})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AuthStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("env", "header"),
    [
        ({"MLFLOW_TRACKING_TOKEN": "t0k"}, "Bearer t0k"),
        (
            {"MLFLOW_TRACKING_USERNAME": "loop", "MLFLOW_TRACKING_PASSWORD": "s3cret"},
            "Basic " + base64.b64encode(b"loop:s3cret").decode(),
        ),
    ],
)
def test_the_rest_client_sends_mlflow_credentials(stub: str, env: dict[str, str], header: str) -> None:
    AuthStub.expected, AuthStub.seen = header, []
    with pytest.raises(RuntimeError, match="401 UNAUTHENTICATED"):
        MlflowRest(stub, "exp").experiment_id()
    assert MlflowRest(stub, "exp", authorization(env_credentials(env))).experiment_id() == "7"
    assert AuthStub.seen == [None, header]


def test_basic_auth_needs_both_halves() -> None:
    with pytest.raises(ValueError, match="both a username and a password"):
        authorization({"username": "loop"})
    assert authorization({}) is None


def test_make_train_refuses_plain_http_to_a_remote_tracking_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from training import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal.example:5000")
    with pytest.raises(ConfigError, match="use https://"):
        tracking.configure()
