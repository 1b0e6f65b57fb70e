"""Settings of the retraining function, read once at cold start (docs/architecture.md, Closed loop)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from trip_core.contracts import DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME, PRODUCTION_ALIAS


@dataclass(frozen=True)
class RetrainConfig:
    models_bucket: str
    capture_bucket: str
    model_name: str = DEFAULT_MODEL_NAME
    lookback_hours: float = 48.0  # captured + labelled rides of this many hours (processing time)
    holdout_fraction: float = 0.2  # the latest rides (by pickup time): the gate's fresh holdout
    min_labelled_rows: int = 2000
    cooldown_minutes: float = 360.0  # since the last retrain that ran (promoted or not)
    lock_lease_seconds: int = 960  # > the function timeout (900 s): a crashed run frees the lock
    gate_margin: float = 0.05  # minutes of holdout RMSE, as the training gate
    gate_absolute_bound: float = 10.0
    rollback_window_hours: float = 24.0
    min_rollback_rows: int = 50
    retrain_alarms: tuple[str, ...] = ()  # alarm names whose ALARM starts a retrain
    rollback_alarms: tuple[str, ...] = ()  # alarm names whose ALARM starts a rollback check first
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = DEFAULT_EXPERIMENT
    alias: str = PRODUCTION_ALIAS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetrainConfig:
        env = os.environ if env is None else env

        def names(key: str) -> tuple[str, ...]:
            return tuple(n.strip() for n in env.get(key, "").split(",") if n.strip())

        missing = [k for k in ("MODELS_BUCKET", "CAPTURE_BUCKET") if not env.get(k)]
        if missing:
            raise ValueError(f"missing environment variable(s): {', '.join(missing)}")
        config = cls(
            models_bucket=env["MODELS_BUCKET"],
            capture_bucket=env["CAPTURE_BUCKET"],
            model_name=env.get("MODEL_NAME", cls.model_name),
            lookback_hours=float(env.get("RETRAIN_LOOKBACK_HOURS", cls.lookback_hours)),
            holdout_fraction=float(env.get("HOLDOUT_FRACTION", cls.holdout_fraction)),
            min_labelled_rows=int(env.get("MIN_LABELLED_ROWS", cls.min_labelled_rows)),
            cooldown_minutes=float(env.get("RETRAIN_COOLDOWN_MINUTES", cls.cooldown_minutes)),
            lock_lease_seconds=int(env.get("LOCK_LEASE_SECONDS", cls.lock_lease_seconds)),
            gate_margin=float(env.get("GATE_MARGIN", cls.gate_margin)),
            gate_absolute_bound=float(env.get("GATE_ABSOLUTE_BOUND", cls.gate_absolute_bound)),
            rollback_window_hours=float(env.get("ROLLBACK_WINDOW_HOURS", cls.rollback_window_hours)),
            min_rollback_rows=int(env.get("MIN_ROLLBACK_ROWS", cls.min_rollback_rows)),
            retrain_alarms=names("RETRAIN_ALARMS"),
            rollback_alarms=names("ROLLBACK_ALARMS"),
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            mlflow_experiment=env.get("MLFLOW_EXPERIMENT_NAME", cls.mlflow_experiment),
            alias=env.get("MODEL_ALIAS", cls.alias),
        )
        if not 0.0 < config.holdout_fraction < 1.0:
            raise ValueError("HOLDOUT_FRACTION must be in (0, 1)")
        return config
