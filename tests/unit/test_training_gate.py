"""Promotion gate decisions and what gets tagged/published, with in-memory registry and store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests.doubles.predict import broken_bundle, tiny_bundle
from training import evaluation_set
from training.data import frame_features, load_month
from training.export import export_bundle
from training.gate import (
    EVAL_MARGIN,
    Candidate,
    GateConfig,
    RegisteredVersion,
    Rides,
    Yardstick,
    gate_and_publish,
)
from training.model import ModelParams, fit
from trip_core.contracts import LIVE_POINTER_KEY
from trip_core.pointer import ModelPointer

DATA = Path(__file__).resolve().parents[2] / "data"
CONFIG = GateConfig(absolute_bound=10.0)


class FakeRegistry:
    def __init__(self, bundles: dict[str, bytes], holder: str | None) -> None:
        self.bundles, self.aliases = bundles, {} if holder is None else {"production": holder}
        self.tags: dict[str, dict[str, str]] = {}

    def alias_holder(self, name: str, alias: str) -> RegisteredVersion | None:
        version = self.aliases.get(alias)
        return None if version is None else RegisteredVersion(version, f"run-{version}")

    def bundle_bytes(self, holder: RegisteredVersion) -> bytes:
        return self.bundles[holder.version]

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        self.tags.setdefault(version, {}).update(tags)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[alias] = version


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = body

    def put_if_absent(self, key: str, body: bytes, content_type: str) -> str | None:
        if key in self.objects:
            return None
        self.objects[key] = body
        return key


Setting = tuple[dict[str, bytes], Rides]


@pytest.fixture(scope="module")
def setting() -> Setting:
    """A weak (few trees) and a strong model, and the first days of a later month in pickup order."""
    train = load_month(str(DATA / "green_tripdata_2023-02.parquet")).frame.sample(6000, random_state=0)
    valid = load_month(str(DATA / "green_tripdata_2023-03.parquet")).frame
    valid = valid.sort_values("lpep_pickup_datetime").iloc[:5000]
    x, y = frame_features(train), train["duration"].to_numpy()
    bundles = {
        name: export_bundle(fit(x, y, ModelParams(max_iter=n)), {"model_name": "m"})
        for name, n in [("weak", 3), ("strong", 60)]
    }
    pickup = valid["lpep_pickup_datetime"].to_numpy().astype("datetime64[s]")
    return bundles, Rides(frame_features(valid), valid["duration"].to_numpy(), pickup)


def _candidate(version: str, bundle: bytes, rides: Rides) -> Candidate:
    from trip_core.bundle import load_bundle

    pred = load_bundle(bundle).predict(rides.features)
    target = rides.target
    return Candidate(
        model_name="m",
        version=version,
        run_id=f"run-{version}",
        bundle=bundle,
        profile=b"{}",
        rmse=float(np.sqrt(np.mean((pred - target) ** 2))),
        mae=float(np.mean(np.abs(pred - target))),
        bundle_sha256=hashlib.sha256(bundle).hexdigest(),
    )


def _yardstick(rides: Rides) -> Yardstick:
    body = evaluation_set.encode(rides.features, rides.target, rides.pickup)
    return Yardstick(evaluation_set.decode("2023-03", "evaluation/2023-03.npz", body), required=True)


def test_better_challenger_promoted_and_published(setting: Setting) -> None:
    bundles, rides = setting
    registry, store = FakeRegistry({"1": bundles["weak"]}, holder="1"), FakeStore()
    decision = gate_and_publish(_candidate("2", bundles["strong"], rides), registry, store, rides, CONFIG)
    assert decision.promote and decision.champion_version == "1"
    assert decision.verdict.startswith("promoted: holdout better")
    assert registry.aliases["production"] == "2"
    live = ModelPointer.from_json(store.objects[LIVE_POINTER_KEY])
    assert (live.version, live.bundle_key) == ("2", "models/m/2/bundle.npz")
    assert live.bundle_sha256 == hashlib.sha256(store.objects[live.bundle_key]).hexdigest()
    assert {"serving/versions/2.json", "models/m/2/reference_profile.json"} <= set(store.objects)
    assert float(registry.tags["2"]["gate.champion_rmse"]) > float(registry.tags["2"]["gate.challenger_rmse"])
    assert float(registry.tags["2"]["gate.holdout_gain"]) > 0


def test_worse_challenger_not_promoted_but_version_published(setting: Setting) -> None:
    bundles, rides = setting
    registry, store = FakeRegistry({"1": bundles["strong"]}, holder="1"), FakeStore()
    decision = gate_and_publish(_candidate("2", bundles["weak"], rides), registry, store, rides, CONFIG)
    assert not decision.promote and registry.aliases["production"] == "1"
    assert LIVE_POINTER_KEY not in store.objects
    assert json.loads(store.objects["serving/versions/2.json"])["version"] == "2"
    assert registry.tags["2"]["gate.verdict"].startswith("refused: holdout not better")


def test_same_model_again_is_refused(setting: Setting) -> None:
    """A tie gains nothing: the rule asks for evidence of GAIN_GOOD minutes."""
    bundles, rides = setting
    registry = FakeRegistry({"1": bundles["strong"]}, holder="1")
    decision = gate_and_publish(_candidate("2", bundles["strong"], rides), registry, None, rides, CONFIG)
    assert not decision.promote and decision.champion_rmse == pytest.approx(decision.challenger_rmse)
    assert decision.holdout is not None and decision.holdout.gain == 0.0


def test_first_model_promoted_without_a_bucket(setting: Setting) -> None:
    bundles, rides = setting
    registry = FakeRegistry({}, holder=None)
    decision = gate_and_publish(_candidate("1", bundles["strong"], rides), registry, None, rides, CONFIG)
    assert decision.promote and registry.aliases["production"] == "1"
    assert registry.tags["1"]["gate.champion_rmse"] == "none"


def test_first_model_over_the_bound_refused(setting: Setting) -> None:
    bundles, rides = setting
    candidate = _candidate("1", bundles["weak"], rides)
    decision = gate_and_publish(
        candidate, FakeRegistry({}, None), None, rides, GateConfig(absolute_bound=1.0)
    )
    assert not decision.promote and "not under the bound" in decision.verdict


def test_unusable_champion_bundle_refuses(setting: Setting) -> None:
    """Fails closed: a champion that cannot be scored is no reason to promote on the absolute bound."""
    bundles, rides = setting
    registry = FakeRegistry({"1": b"garbage"}, holder="1")
    decision = gate_and_publish(_candidate("2", bundles["strong"], rides), registry, None, rides, CONFIG)
    assert (not decision.promote and "production" not in registry.aliases) or registry.aliases[
        "production"
    ] == "1"
    assert decision.verdict.startswith("refused: champion version 1 cannot be scored")


def test_required_evaluation_set_missing_refuses(setting: Setting) -> None:
    bundles, rides = setting
    registry = FakeRegistry({"1": bundles["weak"]}, holder="1")
    yardstick = Yardstick(None, "no evaluation set published", required=True)
    decision = gate_and_publish(
        _candidate("2", bundles["strong"], rides), registry, None, rides, CONFIG, yardstick
    )
    assert not decision.promote and registry.aliases["production"] == "1"
    assert decision.verdict == "refused: evaluation set unusable (no evaluation set published)"


def test_evaluation_set_scored_and_recorded(setting: Setting) -> None:
    bundles, rides = setting
    registry = FakeRegistry({"1": bundles["weak"]}, holder="1")
    yardstick = _yardstick(rides)
    decision = gate_and_publish(
        _candidate("2", bundles["strong"], rides), registry, None, rides, CONFIG, yardstick
    )
    assert decision.promote and decision.evaluation is not None
    assert decision.evaluation.loss < 0  # the strong model gains there too
    assert registry.tags["2"]["gate.eval_sha256"] == yardstick.evaluation.sha256  # type: ignore[union-attr]
    assert decision.record()["evaluation"]["key"] == "evaluation/2023-03.npz"  # type: ignore[index]


def test_worse_on_the_evaluation_set_refuses(setting: Setting) -> None:
    """Better on the holdout (which a client can bend) but worse on the trusted month: refused. Here the
    month's truth is what the champion predicts, so the champion is exact there."""
    from trip_core.bundle import load_bundle

    bundles, rides = setting
    registry = FakeRegistry({"1": bundles["weak"]}, holder="1")
    truth = Rides(rides.features, load_bundle(bundles["weak"]).predict(rides.features), rides.pickup)
    decision = gate_and_publish(
        _candidate("2", bundles["strong"], rides), registry, None, rides, CONFIG, _yardstick(truth)
    )
    assert decision.evaluation is not None and decision.evaluation.loss > EVAL_MARGIN
    assert not decision.promote and registry.aliases["production"] == "1"
    assert decision.verdict.startswith("refused: worse on the evaluation set 2023-03")


@pytest.mark.parametrize(
    ("bundle", "reason"),
    [
        (tiny_bundle(base=-1_000_000.0), "BundleRefused: smoke test: 48 of 48 smoke rides predicted outside"),
        (
            broken_bundle(passthrough_columns=np.arange(1, 13)),
            "BundleError: bundle array 'passthrough_columns'",
        ),
    ],
)
@pytest.mark.parametrize("champion", [None, "weak"])
def test_a_bundle_not_fit_to_serve_is_refused_and_never_published(
    setting: Setting, bundle: bytes, reason: str, champion: str | None
) -> None:
    """Whatever its scores claim (here an RMSE far under the bound), a challenger whose bundle fails to
    load or fails the smoke test is refused before anything is judged, and no object of it is written:
    no pointer can ever name it."""
    bundles, rides = setting
    registry = FakeRegistry({} if champion is None else {"1": bundles[champion]}, holder=champion and "1")
    store = FakeStore()
    candidate = Candidate("m", "2", "run-2", bundle, b"{}", 1.0, 0.5, hashlib.sha256(bundle).hexdigest())
    decision = gate_and_publish(candidate, registry, store, rides, CONFIG)
    assert not decision.promote and decision.bundle_refused
    assert decision.verdict.startswith(f"refused: the challenger's bundle is not fit to serve ({reason}")
    assert store.objects == {}
    assert registry.aliases == ({} if champion is None else {"production": "1"})
    assert (
        registry.tags["2"]["gate.promoted"] == "false"
        and "not fit to serve" in registry.tags["2"]["gate.verdict"]
    )
