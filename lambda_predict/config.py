"""Typed configuration, read once at cold start; fails fast naming every missing or bad variable."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from trip_core.contracts import LIVE_POINTER_KEY, version_pointer_key

DEFAULT_POINTER_TTL_SECONDS = 60.0


class ConfigError(ValueError):
    """The Lambda's environment is incomplete or malformed."""


@dataclass(frozen=True)
class PredictConfig:
    models_bucket: str
    predictions_stream: str
    capture_bucket: str
    rejected_bucket: str
    model_pointer_key: str = LIVE_POINTER_KEY
    model_version_pin: str | None = None
    pointer_ttl_seconds: float = DEFAULT_POINTER_TTL_SECONDS

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
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        models_bucket = required("MODELS_BUCKET")
        predictions_stream = required("PREDICTIONS_STREAM")
        capture_bucket = required("CAPTURE_BUCKET")
        rejected_bucket = required("REJECTED_BUCKET")
        pointer_key = env.get("MODEL_POINTER_KEY", "").strip() or LIVE_POINTER_KEY
        pin = env.get("MODEL_VERSION_PIN", "").strip() or None
        if pin is not None and ("/" in pin or len(pin) > 128):
            problems.append(f"MODEL_VERSION_PIN must be a version name without '/', got {pin!r}")
        ttl_text = env.get("POINTER_TTL_SECONDS", "").strip()
        ttl = DEFAULT_POINTER_TTL_SECONDS
        if ttl_text:
            try:
                ttl = float(ttl_text)
            except ValueError:
                ttl = math.nan
            if not math.isfinite(ttl) or ttl < 0:
                problems.append(
                    f"POINTER_TTL_SECONDS must be a non-negative number of seconds, got {ttl_text!r}"
                )
        if problems:
            raise ConfigError("invalid predict configuration: " + "; ".join(problems))
        return cls(
            models_bucket=models_bucket,
            predictions_stream=predictions_stream,
            capture_bucket=capture_bucket,
            rejected_bucket=rejected_bucket,
            model_pointer_key=pointer_key,
            model_version_pin=pin,
            pointer_ttl_seconds=ttl,
        )
