"""Monitor Lambda: thin handler over lambda_monitor (hourly schedule, or a window to backfill)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lambda_monitor.aws import aws_ports
from lambda_monitor.config import MonitorConfig
from lambda_monitor.service import run_event, run_failed
from trip_core.observability import logger, tracer

CONFIG = MonitorConfig.from_env()  # fails the cold start when misconfigured
PORTS = aws_ports(CONFIG)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        summary = run_event(event, PORTS, CONFIG, datetime.now(UTC))
    except Exception:
        logger.exception("monitor run failed")
        run_failed(PORTS, datetime.now(UTC))
        raise
    logger.info("monitor run done", extra=summary)
    return summary
