"""CloudWatch embedded metric format (EMF) lines of a function's log -> PutMetricData requests.

On AWS, CloudWatch Logs turns every EMF line a Lambda function prints into metrics; LocalStack's
community Logs does not, so a metric the functions write with Powertools (BundleRefused, Errors,
ModelReadFailed, ...) would never reach CloudWatch there and its alarm could never fire. The executor
feeds each invocation's log through `metric_requests` and puts the result, as CloudWatch Logs would.
Plain module (no LocalStack import): unit-tested in the project's own environment.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

MAX_DATA_PER_REQUEST = 1000  # PutMetricData's limit of MetricData entries


def _emf(line: str) -> dict[str, Any] | None:
    start = line.find('{"')
    if start < 0 or '"_aws"' not in line:
        return None
    try:
        document = json.loads(line[start:])
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("_aws"), dict):
        return None
    return document


def _values(value: Any) -> list[float]:
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def _data(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """namespace -> MetricData of one EMF document: a datum per metric and dimension set."""
    meta = document["_aws"]
    stamp = meta.get("Timestamp")
    moment = datetime.fromtimestamp(float(stamp) / 1000, UTC) if stamp else datetime.now(UTC)
    out: dict[str, list[dict[str, Any]]] = {}
    for directive in meta.get("CloudWatchMetrics") or []:
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics") or []:
            values = _values(document.get(metric.get("Name")))
            if not values:
                continue
            for names in dimension_sets:
                dimensions = [{"Name": n, "Value": str(document[n])} for n in names if n in document]
                out.setdefault(directive["Namespace"], []).append(
                    {
                        "MetricName": metric["Name"],
                        "Dimensions": dimensions,
                        "Timestamp": moment,
                        "Values": values,
                        "Unit": metric.get("Unit", "None"),
                    }
                )
    return out


def metric_requests(logs: str) -> list[dict[str, Any]]:
    """PutMetricData keyword arguments for every EMF line of `logs` (other lines are ignored)."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for line in logs.splitlines():
        document = _emf(line)
        if document is None:
            continue
        for namespace, data in _data(document).items():
            by_namespace.setdefault(namespace, []).extend(data)
    return [
        {"Namespace": namespace, "MetricData": data[i : i + MAX_DATA_PER_REQUEST]}
        for namespace, data in by_namespace.items()
        for i in range(0, len(data), MAX_DATA_PER_REQUEST)
    ]
