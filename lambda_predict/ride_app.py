"""One-ride Lambda (SAM `Handler: lambda_predict.ride_app.lambda_handler`): a ride by direct invoke. It is
a function apart from the rides-stream one so that whoever may ask for one ride cannot present an event
as a batch of the stream (whose records name the prediction ids and captures of real rides)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_predict.bootstrap import service_from_env
from lambda_predict.handler import handle_ride
from trip_core.observability import logger, metrics, tracer

SERVICE = service_from_env(keyed=False)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_ride(event, context, SERVICE)
