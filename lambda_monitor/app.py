"""Monitor Lambda: thin handler over monitor_service (hourly schedule, or a window to backfill)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor_service.aws import aws_ports
from monitor_service.config import MonitorConfig
from monitor_service.service import run_event, run_failed

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
