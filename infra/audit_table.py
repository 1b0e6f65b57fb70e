"""`python -m infra.audit_table [--bucket B] [--local]`: the loop's decisions as a table.

--local reads the models bucket of the LocalStack stack (infra/aws.py outputs); otherwise boto3's
default endpoint and MODELS_BUCKET / --bucket.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from lambda_retrain.audit import read_audit
from lambda_retrain.aws import S3Store
from lambda_retrain.ports import Store

COLUMNS = ("time", "kind", "trigger", "verdict", "version", "rows", "challenger", "champion", "by")


def _row(record: dict[str, Any]) -> dict[str, str]:
    metrics = record.get("metrics") or {}
    data = record.get("data") or {}

    def num(key: str) -> str:
        value = metrics.get(key)
        return "" if value is None else f"{float(value):.3f}"

    challenger = num("challenger_holdout_mae") or num("live_mae")
    champion = num("champion_holdout_mae") or num("previous_mae")
    return {
        "time": str(record.get("time", ""))[:19],
        "kind": str(record.get("kind", "")),
        "trigger": str((record.get("trigger") or {}).get("source", "")),
        "verdict": str(record.get("verdict", ""))[:60],
        "version": str(record.get("version") or record.get("live_version") or ""),
        "rows": str(data.get("labelled_rows", "")),
        "challenger": challenger,
        "champion": champion,
        "by": str(record.get("actor", ""))[:40],
    }


def table(records: list[dict[str, Any]]) -> str:
    rows = [dict(zip(COLUMNS, COLUMNS, strict=True)), *(_row(r) for r in records)]
    widths = {c: max(len(r[c]) for r in rows) for c in COLUMNS}
    lines = ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * widths[c] for c in COLUMNS))
    return "\n".join(lines)


def main(argv: list[str] | None = None, store: Store | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m infra.audit_table", description=__doc__)
    parser.add_argument("--bucket", default=os.environ.get("MODELS_BUCKET"))
    parser.add_argument("--local", action="store_true", help="the LocalStack stack (infra/aws.py)")
    args = parser.parse_args(argv)
    if store is None:
        if args.local:
            from infra.aws import client, stack_outputs

            store = S3Store(args.bucket or stack_outputs()["ModelsBucketName"], client("s3"))
        elif args.bucket:
            store = S3Store(args.bucket)
        else:
            parser.error("--bucket (or MODELS_BUCKET) or --local is required")
    text = table(read_audit(store))
    print(text)
    return text


if __name__ == "__main__":
    main()
