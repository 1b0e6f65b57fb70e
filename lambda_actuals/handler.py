"""The partial batch response: the records the batch step could not finish are retried by Lambda
(ReportBatchItemFailures resumes at the lowest of them)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lambda_actuals.service import ActualsService
from trip_core.observability import logger, metrics


def handle(event: dict[str, Any], service: ActualsService) -> dict[str, Any]:
    records = event.get("Records") or []
    outcome = service.process_batch(records)
    logger.info(
        "actuals batch processed",
        extra={
            "records": len(records),
            "accepted": outcome.accepted,
            "rejected": outcome.rejected,
            "retry": len(outcome.retry),
        },
    )
    for name, value in (
        ("IngestAccepted", outcome.accepted),
        ("IngestRejected", outcome.rejected),
        ("IngestRetried", len(outcome.retry)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in outcome.retry]}
