"""Promotion gate decisions and what gets tagged/published, with in-memory registry and store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from training.data import frame_features, load_month
from training.export import export_bundle
from training.gate import Candidate, GateConfig, RegisteredVersion, decide, gate_and_publish
from training.model import ModelParams, fit
from trip_core.contracts import LIVE_POINTER_KEY
from trip_core.pointer import ModelPointer

DATA = Path(__file__).resolve().parents[2] / "data"
CONFIG = GateConfig(margin=0.05, absolute_bound=10.0)


@pytest.mark.parametrize(
    ("challenger", "champion", "promote"),
    [
        (4.0, None, True),  # first model under the absolute bound
        (12.0, None, False),  # first model over the bound
        (4.0, 4.5, True),  # better by more than the margin
        (4.6, 4.5, False),  # worse
        (4.46, 4.5, False),  # better, but within the margin: a tie
        (4.45, 4.5, False),  # exactly the margin is not enough
        (float("nan"), None, False),
    ],
)
def test_decide(challenger: float, champion: float | None, promote: bool) -> None:
    decision = decide(challenger, champion, CONFIG, None if champion is None else "1")
    assert decision.promote is promote
    assert decision.tags()["gate.promoted"] == str(promote).lower()
    assert decision.tags()["gate.margin"] == "0.05"


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


@pytest.fixture(scope="module")
def setting() -> tuple[dict[str, bytes], np.ndarray, np.ndarray]:
    """A weak (few trees) and a strong model, scored on the same validation rows."""
    train = load_month(str(DATA / "green_tripdata_2023-02.parquet")).frame.sample(6000, random_state=0)
    valid = load_month(str(DATA / "green_tripdata_2023-03.parquet")).frame.sample(3000, random_state=0)
    x, y = frame_features(train), train["duration"].to_numpy()
    bundles = {
        name: export_bundle(fit(x, y, ModelParams(max_iter=n)), {"model_name": "m"})
        for name, n in [("weak", 3), ("strong", 60)]
    }
    return bundles, frame_features(valid), valid["duration"].to_numpy()


def _candidate(version: str, bundle: bytes, features: np.ndarray, target: np.ndarray) -> Candidate:
    from trip_core.bundle import load_bundle

    pred = load_bundle(bundle).predict(features)
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


def test_better_challenger_promoted_and_published(
    setting: tuple[dict[str, bytes], np.ndarray, np.ndarray],
) -> None:
    bundles, x, y = setting
    registry, store = FakeRegistry({"1": bundles["weak"]}, holder="1"), FakeStore()
    decision = gate_and_publish(_candidate("2", bundles["strong"], x, y), registry, store, x, y, CONFIG)
    assert decision.promote and decision.champion_version == "1"
    assert registry.aliases["production"] == "2"
    live = ModelPointer.from_json(store.objects[LIVE_POINTER_KEY])
    assert (live.version, live.bundle_key) == ("2", "models/m/2/bundle.npz")
    assert live.bundle_sha256 == hashlib.sha256(store.objects[live.bundle_key]).hexdigest()
    assert {"serving/versions/2.json", "models/m/2/reference_profile.json"} <= set(store.objects)
    assert float(registry.tags["2"]["gate.champion_rmse"]) > float(registry.tags["2"]["gate.challenger_rmse"])


def test_worse_challenger_not_promoted_but_version_published(
    setting: tuple[dict[str, bytes], np.ndarray, np.ndarray],
) -> None:
    bundles, x, y = setting
    registry, store = FakeRegistry({"1": bundles["strong"]}, holder="1"), FakeStore()
    decision = gate_and_publish(_candidate("2", bundles["weak"], x, y), registry, store, x, y, CONFIG)
    assert not decision.promote and registry.aliases["production"] == "1"
    assert LIVE_POINTER_KEY not in store.objects
    assert json.loads(store.objects["serving/versions/2.json"])["version"] == "2"
    assert registry.tags["2"]["gate.verdict"].startswith("rejected")


def test_same_model_again_is_a_tie(setting: tuple[dict[str, bytes], np.ndarray, np.ndarray]) -> None:
    bundles, x, y = setting
    registry = FakeRegistry({"1": bundles["strong"]}, holder="1")
    decision = gate_and_publish(_candidate("2", bundles["strong"], x, y), registry, None, x, y, CONFIG)
    assert not decision.promote and decision.champion_rmse == pytest.approx(decision.challenger_rmse)


def test_first_model_promoted_without_a_bucket(
    setting: tuple[dict[str, bytes], np.ndarray, np.ndarray],
) -> None:
    bundles, x, y = setting
    registry = FakeRegistry({}, holder=None)
    decision = gate_and_publish(_candidate("1", bundles["strong"], x, y), registry, None, x, y, CONFIG)
    assert decision.promote and registry.aliases["production"] == "1"
    assert registry.tags["1"]["gate.champion_rmse"] == "none"


def test_unusable_champion_bundle_falls_back_to_the_bound(
    setting: tuple[dict[str, bytes], np.ndarray, np.ndarray],
) -> None:
    bundles, x, y = setting
    registry = FakeRegistry({"1": b"garbage"}, holder="1")
    decision = gate_and_publish(_candidate("2", bundles["strong"], x, y), registry, None, x, y, CONFIG)
    assert decision.promote and decision.champion_rmse is None
