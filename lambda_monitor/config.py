"""The monitor's configuration, read once at cold start from the environment (docs/architecture.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from trip_core.contracts import METRICS_NAMESPACE


class ConfigError(RuntimeError):
    """The environment does not configure the monitor; raised at cold start."""


@dataclass(frozen=True)
class MonitorConfig:
    models_bucket: str
    capture_bucket: str
    rejected_bucket: str
    min_predictions: int = 200
    min_actuals: int = 50
    drift_threshold: float = 0.1
    metrics_namespace: str = METRICS_NAMESPACE
    history_days: int = 7  # drift scores over time in the HTML page

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorConfig:
        env = os.environ if environ is None else environ
        missing = [
            name for name in ("MODELS_BUCKET", "CAPTURE_BUCKET", "REJECTED_BUCKET") if not env.get(name)
        ]
        if missing:
            raise ConfigError(f"monitor needs environment variable(s) {', '.join(missing)}")
        try:
            config = cls(
                models_bucket=env["MODELS_BUCKET"],
                capture_bucket=env["CAPTURE_BUCKET"],
                rejected_bucket=env["REJECTED_BUCKET"],
                min_predictions=int(env.get("MIN_PREDICTIONS", "200")),
                min_actuals=int(env.get("MIN_ACTUALS", "50")),
                drift_threshold=float(env.get("DRIFT_THRESHOLD", "0.1")),
                metrics_namespace=env.get("METRICS_NAMESPACE", METRICS_NAMESPACE) or METRICS_NAMESPACE,
            )
        except ValueError as error:
            raise ConfigError(f"bad monitor setting: {error}") from error
        if config.min_predictions < 1 or config.min_actuals < 1:
            raise ConfigError("MIN_PREDICTIONS and MIN_ACTUALS must be at least 1")
        if not 0 < config.drift_threshold < 1:
            raise ConfigError(f"DRIFT_THRESHOLD must be in (0, 1), got {config.drift_threshold}")
        return config
