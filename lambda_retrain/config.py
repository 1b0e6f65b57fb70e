"""The retrain function's configuration (trip_core.config: read once at cold start, fails fast;
docs/architecture.md, Closed loop)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from trip_core.config import EnvReader, tracking_uri_problem
from trip_core.contracts import DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME, PRODUCTION_ALIAS
from trip_core.plan import MAX_CANARY_SHARE


class PromotionPolicy(StrEnum):
    """What a challenger that passes the gate goes through (docs/architecture.md, "Safe rollout")."""

    DIRECT = "direct"  # promoted at once; the rollback check judges it afterwards
    AUTO = "auto"  # shadow until the paired rule decides, then a canary (CANARY_SHARE), then promoted
    APPROVE = "approve"  # shadow until the paired rule decides, then it waits for an operator's approval


@dataclass(frozen=True)
class RetrainConfig:
    models_bucket: str
    capture_bucket: str
    model_name: str = DEFAULT_MODEL_NAME
    # The most recent labelled rides, gathered backwards from now until this many or the cap
    # (benchmarks/bench_retrain_volume.py: what a challenger needs against a 2021 champion on 2023)
    target_rows: int = 10_000
    max_lookback_days: float = 14.0
    holdout_fraction: float = 0.2  # the latest rides (by pickup time): the gate's fresh holdout
    min_labelled_rows: int = 5_000  # fewer within the cap: no retrain
    cooldown_minutes: float = 360.0  # since the last retrain that ran (promoted or not)
    lock_lease_seconds: int = 960  # > the function timeout (900 s): a crashed run frees the lock
    gate_absolute_bound: float = 10.0
    rollback_window_hours: float = 24.0
    min_rollback_rows: int = 50
    retrain_alarms: tuple[str, ...] = ()  # alarm names whose ALARM starts a retrain
    rollback_alarms: tuple[str, ...] = ()  # alarm names whose ALARM starts a rollback check first
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = DEFAULT_EXPERIMENT
    # Secrets Manager secret with {"token"} or {"username", "password"}, read once at cold start
    mlflow_auth_secret_arn: str | None = None
    alias: str = PRODUCTION_ALIAS
    allow_force_promote: bool = False  # a direct invoke may promote against the gate (demos only)
    promotion_policy: PromotionPolicy = PromotionPolicy.DIRECT
    canary_share: float = 0.1  # of the rides a canary answers; 0: promoted from shadow
    rollout_stage_hours: float = 24.0  # a shadow or canary undecided by then is decided on what it has
    approval_hours: float = 48.0  # a pending approval expires after this: the challenger is retired
    canary_alarms: tuple[str, ...] = ()  # alarm names whose ALARM stops a canary at once
    rollout_topic_arn: str | None = None  # SNS topic told of every rollout stage (the approval's evidence)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetrainConfig:
        read = EnvReader(os.environ if env is None else env, "retrain")
        config = cls(
            models_bucket=read.required("MODELS_BUCKET"),
            capture_bucket=read.required("CAPTURE_BUCKET"),
            model_name=read.text("MODEL_NAME", cls.model_name),
            target_rows=read.integer("RETRAIN_TARGET_ROWS", cls.target_rows, low=1),
            max_lookback_days=read.number(
                "RETRAIN_MAX_LOOKBACK_DAYS", cls.max_lookback_days, low=0.0, open_=True
            ),
            holdout_fraction=read.number(
                "HOLDOUT_FRACTION", cls.holdout_fraction, low=0.0, high=1.0, open_=True
            ),
            min_labelled_rows=read.integer("MIN_LABELLED_ROWS", cls.min_labelled_rows, low=1),
            cooldown_minutes=read.number("RETRAIN_COOLDOWN_MINUTES", cls.cooldown_minutes, low=0.0),
            lock_lease_seconds=read.integer("LOCK_LEASE_SECONDS", cls.lock_lease_seconds, low=1),
            gate_absolute_bound=read.number("GATE_ABSOLUTE_BOUND", cls.gate_absolute_bound, low=0.0),
            rollback_window_hours=read.number("ROLLBACK_WINDOW_HOURS", cls.rollback_window_hours, low=0.0),
            min_rollback_rows=read.integer("MIN_ROLLBACK_ROWS", cls.min_rollback_rows, low=1),
            retrain_alarms=read.names("RETRAIN_ALARMS"),
            rollback_alarms=read.names("ROLLBACK_ALARMS"),
            mlflow_tracking_uri=read.optional("MLFLOW_TRACKING_URI"),
            mlflow_experiment=read.text("MLFLOW_EXPERIMENT_NAME", cls.mlflow_experiment),
            mlflow_auth_secret_arn=read.optional("MLFLOW_AUTH_SECRET_ARN"),
            alias=read.text("MODEL_ALIAS", cls.alias),
            allow_force_promote=read.flag("ALLOW_FORCE_PROMOTE", cls.allow_force_promote),
            promotion_policy=_policy(read),
            canary_share=read.number("CANARY_SHARE", cls.canary_share, low=0.0, high=MAX_CANARY_SHARE),
            rollout_stage_hours=read.number(
                "ROLLOUT_STAGE_HOURS", cls.rollout_stage_hours, low=0.0, open_=True
            ),
            approval_hours=read.number("APPROVAL_HOURS", cls.approval_hours, low=0.0, open_=True),
            canary_alarms=read.names("CANARY_ALARMS"),
            rollout_topic_arn=read.optional("ROLLOUT_TOPIC_ARN"),
        )
        if config.mlflow_tracking_uri and (problem := tracking_uri_problem(config.mlflow_tracking_uri)):
            read.problem(problem)
        if config.min_labelled_rows > config.target_rows:
            read.problem(
                f"MIN_LABELLED_ROWS ({config.min_labelled_rows}) must not exceed RETRAIN_TARGET_ROWS "
                f"({config.target_rows}): no gathering could reach it"
            )
        read.check()
        return config

    @property
    def staged(self) -> bool:
        """A challenger that passes the gate goes to shadow first, not straight to live."""
        return self.promotion_policy != PromotionPolicy.DIRECT

    @property
    def max_lookback(self) -> timedelta:
        return timedelta(days=self.max_lookback_days)


def _policy(read: EnvReader) -> PromotionPolicy:
    value = read.text("PROMOTION_POLICY", PromotionPolicy.DIRECT)
    if value not in tuple(PromotionPolicy):
        read.problem(f"PROMOTION_POLICY must be one of {[str(p) for p in PromotionPolicy]}, got {value!r}")
        return PromotionPolicy.DIRECT
    return PromotionPolicy(value)
