"""Rides-stream Lambda (SAM `Handler: lambda_predict.app.lambda_handler`): a Kinesis batch of rides (one
ride by direct invoke is lambda_predict.ride_app's). Cold start loads config and the model (init fails
with a clear message if it cannot); the work is in lambda_predict."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_predict.bootstrap import service_from_env
from lambda_predict.handler import handle_batch
from trip_core.observability import logger, metrics, tracer

SERVICE = service_from_env()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_batch(event, context, SERVICE)
