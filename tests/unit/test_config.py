"""The one configuration mechanism of the three functions: typed, read once, one error for every problem."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from infra.replay.template import Template
from lambda_monitor.config import MonitorConfig
from lambda_predict.config import PredictConfig
from lambda_retrain.config import RetrainConfig
from trip_core.config import ConfigError
from trip_core.contracts import DEFAULT_MAX_PICKUP_AGE

BUCKETS = {"MODELS_BUCKET": "m", "CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r", "PREDICTIONS_STREAM": "p"}


@pytest.mark.parametrize("config", [PredictConfig, MonitorConfig, RetrainConfig])
def test_every_function_fails_with_the_one_error_naming_the_variable(config: Any) -> None:
    with pytest.raises(ConfigError, match="MODELS_BUCKET is not set"):
        config.from_env({k: v for k, v in BUCKETS.items() if k != "MODELS_BUCKET"})


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("HOLDOUT_FRACTION", "1", r"in \(0.0, 1.0\), got '1'"),
        ("MIN_LABELLED_ROWS", "lots", "whole number, got 'lots'"),
        ("MIN_LABELLED_ROWS", "0", "at least 1, got 0"),
        ("RETRAIN_COOLDOWN_MINUTES", "nan", "got 'nan'"),
        ("RETRAIN_TARGET_ROWS", "0", "at least 1, got 0"),
        ("RETRAIN_MAX_LOOKBACK_DAYS", "0", r"in \(0.0, inf\), got '0'"),
    ],
)
def test_a_bad_value_is_named_with_its_reason(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable} must be .*{reason}"):
        RetrainConfig.from_env({**BUCKETS, variable: value})


def test_a_minimum_the_target_cannot_reach_fails_fast() -> None:
    with pytest.raises(ConfigError, match=r"MIN_LABELLED_ROWS \(3000\) must not exceed RETRAIN_TARGET_ROWS"):
        RetrainConfig.from_env({**BUCKETS, "RETRAIN_TARGET_ROWS": "2000", "MIN_LABELLED_ROWS": "3000"})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        MonitorConfig.from_env({"MIN_PREDICTIONS": "0", "MIN_ACTUALS": "x"})
    for name in ("MODELS_BUCKET", "CAPTURE_BUCKET", "REJECTED_BUCKET", "MIN_PREDICTIONS", "MIN_ACTUALS"):
        assert name in str(info.value)


def test_unset_and_blank_take_the_defaults() -> None:
    config = RetrainConfig.from_env({**BUCKETS, "GATE_ABSOLUTE_BOUND": " ", "RETRAIN_ALARMS": "a, b,"})
    assert (config.gate_absolute_bound, config.retrain_alarms, config.mlflow_tracking_uri) == (
        10.0,
        ("a", "b"),
        None,
    )


PREDICT_ENV = {**BUCKETS, "PREDICTION_ID_SECRET_ARN": "s"}


def test_the_pickup_age_is_the_contracts_unless_a_stack_sets_its_own() -> None:
    assert PredictConfig.from_env(PREDICT_ENV).max_pickup_age == DEFAULT_MAX_PICKUP_AGE
    backfill = PredictConfig.from_env({**PREDICT_ENV, "MAX_PICKUP_AGE_DAYS": "400"})
    assert backfill.max_pickup_age == timedelta(days=400)
    # the deployed stack's default is the same
    resources = ("ModelsBucket", "PredictionsStream", "CaptureBucket", "RejectedBucket", "PredictionIdSecret")
    template = Template.load(refs={name: name for name in resources})
    environment = template.function_environment("PredictFunction")
    assert PredictConfig.from_env(environment).max_pickup_age == DEFAULT_MAX_PICKUP_AGE


@pytest.mark.parametrize("value", ["-1", "3654", "a fortnight", "inf"])
def test_a_pickup_age_beyond_the_limit_fails_fast(value: str) -> None:
    """Negative, past MAX_PICKUP_AGE_LIMIT or not a number: the cold start stops, naming it."""
    with pytest.raises(
        ConfigError, match=rf"MAX_PICKUP_AGE_DAYS must be a number in \[0.0, 3653.0\], got '{value}'"
    ):
        PredictConfig.from_env({**PREDICT_ENV, "MAX_PICKUP_AGE_DAYS": value})
