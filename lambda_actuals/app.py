"""Actuals Lambda (SAM `Handler: lambda_actuals.app.lambda_handler`): a Kinesis batch of actual
durations from the actuals stream. The work is in lambda_actuals.service."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_actuals.bootstrap import service_from_env
from lambda_actuals.handler import handle
from trip_core.observability import logger, metrics, tracer

SERVICE = service_from_env()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, SERVICE)
