"""Event routing and the partial batch response.

A Kinesis batch is processed as a whole first (validate all, ONE vectorised predict, PutRecords,
capture, rejections); then Powertools' BatchProcessor walks the records the batch step could not
finish with a record handler that raises for each, so they end up in `batchItemFailures` and Lambda
retries them. Rejected records were stored, so they count as handled; when every record was
handled, the response is the empty `batchItemFailures` without a walk.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from lambda_predict.service import PredictService
from trip_core.observability import NAMESPACE, count_now, logger, metrics

CAPTURE_FAILED_METRIC = "CaptureFailed"

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord


@functools.cache
def batch_processor() -> BatchProcessor:
    """Imported and built on the first batch with records to retry (~30 ms off every cold start)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)


class RetryableRecordError(RuntimeError):
    """This record's output or storage failed transiently; Lambda must deliver it again."""


def batch_problem(event: Any) -> dict[str, str] | None:
    """Why `event` is not a Kinesis batch the function can account for record by record (each record
    needs its sequence number to be retried or stored as rejected), or None."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return {"field": "Records", "reason": "missing: this function reads the rides stream"}
    for i, record in enumerate(records):
        kinesis = record.get("kinesis") if isinstance(record, dict) else None
        if not isinstance(kinesis, dict):
            return {"field": f"Records[{i}].kinesis", "reason": "missing or not an object"}
        sequence = kinesis.get("sequenceNumber")
        if not (isinstance(sequence, str) and sequence.isdigit()):
            return {
                "field": f"Records[{i}].kinesis.sequenceNumber",
                "reason": "missing or not a text of digits",
            }
    return None


def handle_batch(event: Any, context: Any, service: PredictService) -> dict[str, Any]:
    """A batch of the rides stream; anything else is answered with the field that is wrong."""
    problem = batch_problem(event)
    if problem is not None:
        logger.error("not a rides-stream batch", extra=problem)
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
        return {"error": "not a Kinesis batch", "reasons": [problem]}
    started = time.perf_counter()
    response, version, counts = _handle_batch(event, context, service)
    _emit(version, counts, started)
    return response


def handle_ride(event: Any, context: Any, service: PredictService) -> dict[str, Any]:
    """One ride by direct invoke: the prediction record, or {"error", "reasons"}."""
    started = time.perf_counter()
    request_id = str(getattr(context, "aws_request_id", "") or "local")
    outcome = service.predict_direct(event, request_id)
    ok = "error" not in outcome.response
    counts = {"Predictions": int(ok), "Rejected": int(not ok), "Errors": int(ok and not outcome.captured)}
    if ok and not outcome.captured:  # answered, but its actual will name no capture: CaptureFailedAlarm
        count_now(CAPTURE_FAILED_METRIC)
    _emit(outcome.model_version, counts, started)
    return outcome.response


def _emit(version: str | None, counts: dict[str, int], started: float) -> None:
    metrics.add_dimension(name="model_version", value=version or "none")
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(
        name="Latency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )


def _handle_batch(
    event: dict[str, Any], context: Any, service: PredictService
) -> tuple[dict[str, Any], str, dict[str, int]]:
    outcome = service.process_batch(event["Records"])
    retry = outcome.retry
    if not event["Records"]:
        return {"batchItemFailures": []}, outcome.model_version, {}

    def record_handler(record: KinesisStreamRecord) -> None:
        reason = retry.get(record.kinesis.sequence_number)
        if reason is not None:
            raise RetryableRecordError(reason)

    # Records the batch step finished need no walk: BatchProcessor builds the partial response from
    # the records left to retry (the same batchItemFailures as walking all; 0.25 ms per 100 saved).
    to_retry = [r for r in event["Records"] if str(r["kinesis"]["sequenceNumber"]) in retry] if retry else []
    response: dict[str, Any] = {"batchItemFailures": []}
    if to_retry:
        from aws_lambda_powertools.utilities.batch import process_partial_response

        response = dict(
            process_partial_response(
                event={**event, "Records": to_retry},
                record_handler=record_handler,
                processor=batch_processor(),
                context=context,
            )
        )
    logger.info(
        "batch processed",
        extra={
            "records": len(event["Records"]),
            "predicted": outcome.predicted,
            "rejected": outcome.rejected,
            "retry": len(retry),
            "model_version": outcome.model_version,
            "answered_by": outcome.answered_by,
        },
    )
    live_answers = outcome.answered_by.get(outcome.model_version, 0)
    for version, answers in outcome.answered_by.items():
        if version != outcome.model_version:  # a canary's answers, under its version
            count_for_version("Predictions", answers, version)
    counts = {"Predictions": live_answers, "Rejected": outcome.rejected, "Errors": len(retry)}
    return response, outcome.model_version, counts


def count_for_version(name: str, value: int, version: str) -> None:
    """A count under another model_version than the invocation's metrics carry (one per EMF document)."""
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="model_version", value=version)
