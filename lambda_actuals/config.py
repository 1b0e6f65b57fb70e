"""The actuals function's configuration (trip_core.config: read once at cold start, fails fast)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trip_core.config import EnvReader


@dataclass(frozen=True)
class ActualsConfig:
    capture_bucket: str
    rejected_bucket: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ActualsConfig:
        read = EnvReader(env, "actuals")
        config = cls(
            capture_bucket=read.required("CAPTURE_BUCKET"),
            rejected_bucket=read.required("REJECTED_BUCKET"),
        )
        read.check()
        return config
