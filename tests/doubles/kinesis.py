"""A record of a Lambda Kinesis event, as the event source mapping delivers it (tests of every stream
function build theirs here)."""

from __future__ import annotations

import base64
import json
from typing import Any


def lambda_record(shard: str, seq: int, payload: Any, raw: bytes | None, arrival: float) -> dict[str, Any]:
    """`payload` as JSON (or `raw` bytes as they are) at sequence number `seq` of `shard`."""
    data = raw if raw is not None else json.dumps(payload).encode()
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "p",
            "sequenceNumber": str(seq),
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{shard}:{seq}",
    }
