"""The trusted yardstick in the loop, on real months (issue 13): a model adapted to 2023 traffic replaces
a 2021 champion; challengers trained on forged labels are refused, audited with the evaluation figures.

The loop runs in memory (tests.unit.test_retrain_loop's stores and helpers); the evaluation set is the
real 2023-02 month, published as `make train` publishes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lambda_retrain.audit import read_audit
from lambda_retrain.loop import handle
from lambda_retrain.ports import Ports
from tests.doubles.retrain import MemoryStore, StaticAlarms
from tests.unit.test_retrain_loop import CONFIG, NOW, capture, direct, publish_model
from training import evaluation_set
from training.data import PICKUP, load_month
from training.gate import EVAL_MARGIN
from training.model import ModelParams
from trip_core.contracts import LIVE_POINTER_KEY
from trip_core.pointer import ModelPointer

DATA = Path(__file__).resolve().parents[2] / "data"
PARAMS = ModelParams(max_iter=100)
SERVED_HOURS = 70  # the served rides span the lookback, so the holdout spans the rule's pickup hours


def month_rides(month: str, n: int, seed: int) -> dict[str, np.ndarray]:
    frame = load_month(str(DATA / f"green_tripdata_{month}.parquet")).frame.sample(n, random_state=seed)
    return {
        "pu": frame["PULocationID"].to_numpy(),
        "do": frame["DOLocationID"].to_numpy(),
        "distance": frame["trip_distance"].to_numpy(),
        "pickup": frame[PICKUP].to_numpy().astype("datetime64[s]"),
        "duration": frame["duration"].to_numpy(),
    }


@pytest.fixture(scope="module")
def evaluation_body() -> tuple[str, bytes]:
    return evaluation_set.from_month(str(DATA / "green_tripdata_2023-02.parquet"))


def loop_with(champion_month: str, served: dict[str, np.ndarray], yardstick: tuple[str, bytes]) -> Ports:
    models, captures = MemoryStore(), MemoryStore()
    bundle = publish_model(models, "1", month_rides(champion_month, 20_000, 0), PARAMS)
    capture(captures, served, bundle, "1", NOW, 0, span_hours=SERVED_HOURS)
    evaluation_set.publish(models, *yardstick)
    return Ports(models, captures, StaticAlarms())


def retrain(ports: Ports) -> dict[str, object]:
    (decision,) = handle(direct(params={"max_iter": PARAMS.max_iter}), ports, CONFIG, NOW, "t")["decisions"]
    return dict(decision)


def live_version(ports: Ports) -> str:
    body = ports.models.get(LIVE_POINTER_KEY)
    assert body is not None
    return ModelPointer.from_json(body).version


def test_the_2021_to_2023_heal_passes_the_evaluation_set(evaluation_body: tuple[str, bytes]) -> None:
    ports = loop_with("2021-01", month_rides("2023-03", 8000, 1), evaluation_body)
    decision = retrain(ports)
    (record,) = read_audit(ports.models)
    evaluation = record["metrics"]["gate"]["evaluation"]
    assert decision["kind"] == "promoted", decision["verdict"]
    assert (
        evaluation["month"] == "2023-02" and evaluation["sha256"] == record["gate_tags"]["gate.eval_sha256"]
    )
    assert evaluation["challenger_mae"] < evaluation["champion_mae"] + EVAL_MARGIN
    assert live_version(ports) == decision["version"]


def forged(served: dict[str, np.ndarray], how: str) -> dict[str, np.ndarray]:
    """The same rides with the actual durations an attacker reports instead."""
    truth = served["duration"]
    if how == "shuffled":
        return {**served, "duration": np.random.default_rng(5).permutation(truth)}
    return {**served, "duration": 61.0 - truth}  # rewritten: long rides short, short rides long


@pytest.mark.parametrize("how", ["shuffled", "rewritten"])
def test_a_challenger_trained_on_forged_labels_is_refused(
    evaluation_body: tuple[str, bytes], how: str
) -> None:
    ports = loop_with("2023-01", forged(month_rides("2023-03", 8000, 2), how), evaluation_body)
    decision = retrain(ports)
    (record,) = read_audit(ports.models)
    evaluation = record["metrics"]["gate"]["evaluation"]
    assert decision["kind"] == "refused" and record["kind"] == "refused", decision["verdict"]
    assert live_version(ports) == "1"
    assert evaluation["challenger_mae"] > evaluation["champion_mae"] + EVAL_MARGIN
    if how == "rewritten":  # the forged holdout favours the challenger; only the yardstick stops it
        assert record["metrics"]["gate"]["holdout"]["outcome"] == "better"
        assert str(decision["verdict"]).startswith("refused: worse on the evaluation set 2023-02")
