"""The predict function's configuration (trip_core.config: read once at cold start, fails fast)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from trip_core.config import EnvReader
from trip_core.contracts import (
    DEFAULT_MAX_PICKUP_AGE,
    LIVE_POINTER_KEY,
    MAX_PICKUP_AGE_LIMIT,
    version_pointer_key,
)

DEFAULT_POINTER_TTL_SECONDS = 60.0
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class PredictConfig:
    models_bucket: str
    predictions_stream: str
    capture_bucket: str
    rejected_bucket: str
    prediction_id_secret: str  # the Secrets Manager secret (ARN or name) keying the prediction ids
    model_pointer_key: str = LIVE_POINTER_KEY
    model_version_pin: str | None = None
    pointer_ttl_seconds: float = DEFAULT_POINTER_TTL_SECONDS
    max_pickup_age: timedelta = DEFAULT_MAX_PICKUP_AGE  # a given pickup at most this before its arrival

    @property
    def pointer_key(self) -> str:
        """The pointer to follow: the pinned version's, or the live one."""
        if self.model_version_pin:
            return version_pointer_key(self.model_version_pin)
        return self.model_pointer_key

    @property
    def pinned(self) -> bool:
        return bool(self.model_version_pin)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PredictConfig:
        read = EnvReader(env, "predict")
        pin = read.optional("MODEL_VERSION_PIN")
        if pin is not None and ("/" in pin or len(pin) > 128):
            read.problem(f"MODEL_VERSION_PIN must be a version name without '/', got {pin!r}")
        max_age_days = read.number(
            "MAX_PICKUP_AGE_DAYS", DEFAULT_MAX_PICKUP_AGE / _DAY, low=0.0, high=MAX_PICKUP_AGE_LIMIT / _DAY
        )
        config = cls(
            models_bucket=read.required("MODELS_BUCKET"),
            predictions_stream=read.required("PREDICTIONS_STREAM"),
            capture_bucket=read.required("CAPTURE_BUCKET"),
            rejected_bucket=read.required("REJECTED_BUCKET"),
            prediction_id_secret=read.required("PREDICTION_ID_SECRET_ARN"),
            model_pointer_key=read.text("MODEL_POINTER_KEY", LIVE_POINTER_KEY),
            model_version_pin=pin,
            pointer_ttl_seconds=read.number("POINTER_TTL_SECONDS", DEFAULT_POINTER_TTL_SECONDS, low=0.0),
            max_pickup_age=_DAY * max_age_days,
        )
        read.check()
        return config
