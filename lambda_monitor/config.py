"""The monitor's configuration (trip_core.config: read once at cold start, fails fast)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from trip_core.config import EnvReader
from trip_core.contracts import METRICS_NAMESPACE


@dataclass(frozen=True)
class MonitorConfig:
    models_bucket: str
    capture_bucket: str
    rejected_bucket: str
    min_predictions: int = 200
    min_actuals: int = 50
    metrics_namespace: str = METRICS_NAMESPACE
    history_days: int = 7  # drift scores over time in the HTML page
    # Window ends (one per MONITOR_STEP, an hour) a scheduled run evaluates at most, oldest first: bounds
    # a run's work under the function's timeout; a longer backlog is caught up over several runs.
    max_catch_up_hours: int = 24

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorConfig:
        read = EnvReader(os.environ if environ is None else environ, "monitor")
        config = cls(
            models_bucket=read.required("MODELS_BUCKET"),
            capture_bucket=read.required("CAPTURE_BUCKET"),
            rejected_bucket=read.required("REJECTED_BUCKET"),
            min_predictions=read.integer("MIN_PREDICTIONS", cls.min_predictions, low=1),
            min_actuals=read.integer("MIN_ACTUALS", cls.min_actuals, low=1),
            metrics_namespace=read.text("METRICS_NAMESPACE", METRICS_NAMESPACE),
            max_catch_up_hours=read.integer("MAX_CATCH_UP_HOURS", cls.max_catch_up_hours, low=1),
        )
        read.check()
        return config
