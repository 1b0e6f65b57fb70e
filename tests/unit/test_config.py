"""The one configuration mechanism of the three functions: typed, read once, one error for every problem."""

from __future__ import annotations

from typing import Any

import pytest

from lambda_monitor.config import MonitorConfig
from lambda_predict.config import PredictConfig
from lambda_retrain.config import RetrainConfig
from trip_core.config import ConfigError

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
