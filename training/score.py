"""`python -m training.score --input FILE_OR_S3_URI [...] --output FILE_OR_S3_URI [--bundle DIR]`

Batch scoring through the serving code: TLC parquet months, or the rides stream's JSON lines (one ride
record per line, trip_core.rides), scored with the live bundle (`serving/live.json` in the models bucket)
or a local one. The output is parquet: the input position and the ride's columns, `ride_duration` (the
name of the prediction record's answer) and `model_version`. Every input row is scored or in the rejects
file with the field and the reason, never dropped. Progress goes to stderr, one JSON summary to stdout.

The same rules as the predict function: rows are judged by trip_core.validity on whole columns, and a
rejected row's reasons come from the one ride validator (trip_core.rides); features are trip_core.features',
the answer is the bundle's rounded to PREDICTION_DECIMALS and given only if `plausible_minutes`. A batch
has no arrival time: the scoring time stands in for it (a ride without a pickup is picked up then), and any
past pickup is plausible; one more than MAX_PICKUP_LEAD after the scoring time is not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from training.data import (
    PICKUP,
    RIDE_COLUMNS,
    ByteReader,
    DataError,
    aligned,
    check_columns,
    frame_features,
    read_bytes,
    valid_rides,
)
from trip_core.bundle import ServingBundle
from trip_core.contracts import (
    BUNDLE_FILENAME,
    LIVE_POINTER_KEY,
    MAX_PICKUP_LEAD,
    version_pointer_key,
)
from trip_core.pointer import ModelPointer
from trip_core.rides import (
    FieldError,
    ValidRide,
    pickup_column,
    ride_features,
    to_new_york_naive,
    validate_json_bytes,
    validate_ride,
)
from trip_core.smoke import load_servable
from trip_core.validity import answered_minutes, implausible_minutes_reason, plausible_minutes

PREDICTION_COLUMN = "ride_duration"  # the answer's name in the prediction record (lambda_predict.service)
VERSION_COLUMN = "model_version"
DEFAULT_CHUNK_ROWS = 100_000
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
# No arrival time bounds a batch of past rides: any past pickup is a ride (the bound ahead still holds).
BATCH_MAX_PICKUP_AGE = timedelta.max
WIRE_PICKUP = "pickup_datetime"  # the validator's name of the pickup field; a TLC file calls it PICKUP

_REASONS = pa.list_(pa.struct([("field", pa.string()), ("reason", pa.string())]))
_REJECTION = [("field", pa.string()), ("reason", pa.string()), ("reasons", _REASONS)]
_ANSWER = [(PREDICTION_COLUMN, pa.float64()), (VERSION_COLUMN, pa.string())]
TLC_RIDE = [
    ("PULocationID", pa.int64()),
    ("DOLocationID", pa.int64()),
    ("trip_distance", pa.float64()),
    (PICKUP, pa.timestamp("us")),
]
# A rejected TLC row keeps its values as read (aligned): a null or non-integer id is not an int64.
TLC_RAW = [(name, pa.float64() if kind == pa.int64() else kind) for name, kind in TLC_RIDE]
TLC_SCORED = pa.schema([("source", pa.string()), ("row", pa.int64()), *TLC_RIDE, *_ANSWER])
TLC_REJECTED = pa.schema([("source", pa.string()), ("row", pa.int64()), *TLC_RAW, *_REJECTION])
JSON_SCORED = pa.schema(
    [
        ("source", pa.string()),
        ("line", pa.int64()),
        ("ride_id", pa.string()),  # an int or a string on the wire: one parquet column holds both as text
        *TLC_RIDE[:3],
        (WIRE_PICKUP, pa.timestamp("s")),  # as serving reads it: whole seconds
        *_ANSWER,
    ]
)
JSON_REJECTED = pa.schema([("source", pa.string()), ("line", pa.int64()), ("data", pa.string()), *_REJECTION])


class ScoreError(RuntimeError):
    """The run cannot go on: no model to score with, or an output that cannot be written."""


# ------------------------------------------------------------------------------------------ the model


@dataclass(frozen=True)
class Model:
    bundle: ServingBundle
    version: str


def live_model(bucket: str, version: str | None = None, reader: ByteReader = read_bytes) -> Model:
    """The model the predict function serves: the pointer's bundle, checksum checked and smoke-tested
    (trip_core.smoke.load_servable); with `version`, that registered version's pointer instead."""
    where = f"s3://{bucket}/{LIVE_POINTER_KEY if version is None else version_pointer_key(version)}"
    try:
        pointer = ModelPointer.from_json(reader(where))
        bundle = load_servable(reader(f"s3://{bucket}/{pointer.bundle_key}"), pointer.bundle_sha256)
    except Exception as exc:  # a missing object, no credentials, a pointer or bundle refused: no model
        raise ScoreError(f"no model from {where}: {exc}") from exc
    return Model(bundle, pointer.version)


def local_model(path: Path, version: str | None = None) -> Model:
    """A bundle as `training.train --out DIR` writes it (DIR or DIR/bundle.npz), smoke-tested as a served
    one; its version is `version`, else `local-` and the start of its sha256 (it has no registered one)."""
    file = path / BUNDLE_FILENAME if path.is_dir() else path
    try:
        data = file.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        bundle = load_servable(data, sha256)
    except Exception as exc:  # unreadable, not a bundle, refused by the smoke test
        raise ScoreError(f"no model from {file}: {exc}") from exc
    return Model(bundle, version or f"local-{sha256[:12]}")


# ------------------------------------------------------------------------------------------ one chunk


@dataclass(frozen=True)
class Scoring:
    model: Model
    arrival: datetime  # the scoring time, New York local (naive): what a record's arrival time is to serving


@dataclass(frozen=True)
class Chunk:
    rows: int  # input rows judged
    scored: pa.RecordBatch
    rejected: pa.RecordBatch
    rejected_fields: list[str]  # the first problem's field of each rejected row


def _rejection_columns(problems: Sequence[Sequence[FieldError]]) -> list[pa.Array]:
    """field, reason (the first problem) and every problem of each rejected row."""
    return [
        pa.array([p[0].field for p in problems], pa.string()),
        pa.array([p[0].reason for p in problems], pa.string()),
        pa.array([[{"field": e.field, "reason": e.reason} for e in p] for p in problems], _REASONS),
    ]


def _answer_columns(minutes: np.ndarray, version: str) -> list[pa.Array]:
    return [pa.array(minutes, pa.float64()), pa.array([version] * len(minutes), pa.string())]


def _not_ahead(pickups: np.ndarray, arrival: datetime) -> np.ndarray:
    """False where a pickup is more than MAX_PICKUP_LEAD after the arrival (trip_core.rides' bound)."""
    return ~(pickups > np.datetime64(arrival + MAX_PICKUP_LEAD, "us"))


def _json_number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def tlc_problems(row: tuple[float, float, float, np.datetime64], arrival: datetime) -> list[FieldError]:
    """Why one aligned TLC row is not a ride, in the validator's words: the row as a ride payload (a null
    as JSON null) judged by trip_core.rides. A null pickup is a problem here (serving would use the
    arrival time: a TLC row has none)."""
    pu, do, distance, pickup = row
    iso = None if np.isnat(pickup) else pickup.astype(datetime).isoformat()
    ride = {
        "PULocationID": _json_number(pu),
        "DOLocationID": _json_number(do),
        "trip_distance": _json_number(distance),
        WIRE_PICKUP: iso,
    }
    result = validate_ride({"ride": ride, "ride_id": 0}, arrival, BATCH_MAX_PICKUP_AGE)
    problems = [] if isinstance(result, ValidRide) else list(result)
    if iso is None:
        problems.append(FieldError(WIRE_PICKUP, "must not be null"))
    if not problems:  # the column rules refused what the ride validator accepts: never without a reason
        problems.append(FieldError("data", "refused by trip_core.validity, accepted by trip_core.rides"))
    return [FieldError(PICKUP if p.field == WIRE_PICKUP else p.field, p.reason) for p in problems]


def score_tlc(batch: pa.RecordBatch, first_row: int, source: str, scoring: Scoring) -> Chunk:
    """One batch of a TLC file: its valid rows scored, the others (and any without a plausible answer)
    rejected with their reasons; `first_row` is the batch's position in the file."""
    frame = aligned(batch, RIDE_COLUMNS)
    valid = valid_rides(frame) & _not_ahead(frame[PICKUP].to_numpy(), scoring.arrival)
    minutes = answered_minutes(scoring.model.bundle, frame_features(frame.loc[valid]))
    given = np.asarray(plausible_minutes(minutes), dtype=bool)
    at_valid = np.flatnonzero(valid)
    problems = {i: tlc_problems(row, scoring.arrival) for i, row in _rows(frame, ~valid)}
    problems |= _unanswered(at_valid[~given], minutes[~given])
    at_rejected = np.array(sorted(problems), dtype=np.int64)
    reasons = [problems[i] for i in at_rejected.tolist()]
    origin = (source, first_row)
    answered = _answer_columns(minutes[given], scoring.model.version)
    return Chunk(
        len(frame),
        _tlc_batch(TLC_SCORED, frame, at_valid[given], origin, answered),
        _tlc_batch(TLC_REJECTED, frame, at_rejected, origin, _rejection_columns(reasons)),
        [r[0].field for r in reasons],
    )


def _unanswered(at: np.ndarray, minutes: np.ndarray) -> dict[int, list[FieldError]]:
    """The rows whose answer is not plausible_minutes: rejected as the service rejects them."""
    return {
        i: [FieldError("prediction", implausible_minutes_reason(m))]
        for i, m in zip(at.tolist(), minutes.tolist(), strict=True)
    }


def _rows(frame: pd.DataFrame, mask: np.ndarray) -> Iterator[tuple[int, Any]]:
    """(position, (pu, do, distance, pickup)) of the rows under `mask`: numpy values, NaN/NaT for nulls."""
    columns = [frame[name].to_numpy()[mask] for name in RIDE_COLUMNS]
    yield from zip(np.flatnonzero(mask).tolist(), zip(*columns, strict=True), strict=True)


def _tlc_batch(
    schema: pa.Schema, frame: pd.DataFrame, at: np.ndarray, origin: tuple[str, int], tail: list[pa.Array]
) -> pa.RecordBatch:
    """source, row, the ride columns of the rows `at` (typed as the schema says), then `tail`."""
    source, first_row = origin
    ride = []
    for name in RIDE_COLUMNS:
        kind = schema.field(name).type
        values = frame[name].to_numpy()[at]
        ride.append(
            pa.array(values.astype(np.int64) if kind == pa.int64() else values, kind, from_pandas=True)
        )
    head = [pa.array([source] * len(at), pa.string()), pa.array(first_row + at, pa.int64())]
    return pa.RecordBatch.from_arrays([*head, *ride, *tail], schema=schema)


def score_lines(lines: Sequence[bytes], first_line: int, source: str, scoring: Scoring) -> Chunk:
    """Rides-stream records, one per line, each judged by the one ride validator; `first_line` is the
    number of lines before them in the file (the output numbers lines from 1)."""
    rides: list[ValidRide] = []
    at_rides: list[int] = []
    problems: dict[int, list[FieldError]] = {}
    for i, line in enumerate(lines):
        result = validate_json_bytes(line, scoring.arrival, BATCH_MAX_PICKUP_AGE)
        if isinstance(result, ValidRide):
            rides.append(result)
            at_rides.append(i)
        else:
            problems[i] = result
    minutes = answered_minutes(scoring.model.bundle, ride_features(rides))
    given = np.asarray(plausible_minutes(minutes), dtype=bool)
    problems |= _unanswered(np.array(at_rides, dtype=np.int64)[~given], minutes[~given])
    kept = [ride for ride, ok in zip(rides, given.tolist(), strict=True) if ok]
    at_kept = np.array(at_rides, dtype=np.int64)[given]
    at_rejected = sorted(problems)
    origin = (source, first_line)
    return Chunk(
        len(lines),
        _json_scored(kept, at_kept, origin, _answer_columns(minutes[given], scoring.model.version)),
        _json_rejected(
            [lines[i] for i in at_rejected], at_rejected, origin, [problems[i] for i in at_rejected]
        ),
        [problems[i][0].field for i in at_rejected],
    )


def _json_scored(
    rides: Sequence[ValidRide], at: np.ndarray, origin: tuple[str, int], tail: list[pa.Array]
) -> pa.RecordBatch:
    source, first_line = origin
    columns = [
        pa.array([source] * len(rides), pa.string()),
        pa.array(first_line + at + 1, pa.int64()),
        pa.array([str(r.ride_id) for r in rides], pa.string()),
        pa.array([r.pu_location_id for r in rides], pa.int64()),
        pa.array([r.do_location_id for r in rides], pa.int64()),
        pa.array([r.trip_distance for r in rides], pa.float64()),
        pa.array(pickup_column(rides), pa.timestamp("s")),
    ]
    return pa.RecordBatch.from_arrays([*columns, *tail], schema=JSON_SCORED)


def _json_rejected(
    lines: Sequence[bytes],
    at: Sequence[int],
    origin: tuple[str, int],
    problems: Sequence[Sequence[FieldError]],
) -> pa.RecordBatch:
    source, first_line = origin
    columns = [
        pa.array([source] * len(lines), pa.string()),
        pa.array([first_line + i + 1 for i in at], pa.int64()),
        pa.array([line.decode("utf-8", errors="replace") for line in lines], pa.string()),
    ]
    return pa.RecordBatch.from_arrays([*columns, *_rejection_columns(problems)], schema=JSON_REJECTED)


# ------------------------------------------------------------------------------------------ one input


@dataclass(frozen=True)
class InputFormat:
    scored: pa.Schema
    rejected: pa.Schema
    rejects_suffix: str  # of the default rejects file, after the output's stem
    open: Callable[[str, bytes, Scoring, int], tuple[int, Iterator[Chunk]]]  # -> (rows, chunks)


def tlc_chunks(uri: str, raw: bytes, scoring: Scoring, chunk_rows: int) -> tuple[int, Iterator[Chunk]]:
    """A TLC parquet file's row count and its chunks, read `chunk_rows` at a time (memory stays bounded);
    DataError, naming the file, if it is not parquet or lacks a ride column."""
    try:
        file = pq.ParquetFile(pa.BufferReader(raw))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(uri, f"not a parquet file ({exc})") from exc
    check_columns(uri, file.schema_arrow, RIDE_COLUMNS)
    return file.metadata.num_rows, _tlc_iter(uri, file, scoring, chunk_rows)


def _tlc_iter(uri: str, file: pq.ParquetFile, scoring: Scoring, chunk_rows: int) -> Iterator[Chunk]:
    batches = file.iter_batches(batch_size=chunk_rows, columns=list(RIDE_COLUMNS))
    first = 0
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowInvalid, OSError) as exc:  # a corrupt row group: the file, not the run's fault
            raise DataError(uri, f"unreadable after row {first} ({exc})") from exc
        if batch is None:
            return
        yield score_tlc(batch, first, uri, scoring)
        first += batch.num_rows


def json_chunks(uri: str, raw: bytes, scoring: Scoring, chunk_rows: int) -> tuple[int, Iterator[Chunk]]:
    """A JSON lines file's line count and its chunks; every line is a row (a blank one is rejected)."""
    lines = raw.splitlines()
    starts = range(0, len(lines), chunk_rows)
    return len(lines), (score_lines(lines[s : s + chunk_rows], s, uri, scoring) for s in starts)


TLC_PARQUET = InputFormat(TLC_SCORED, TLC_REJECTED, ".rejects.parquet", tlc_chunks)
JSON_LINES = InputFormat(JSON_SCORED, JSON_REJECTED, ".rejects.jsonl", json_chunks)


def is_json_lines(uri: str) -> bool:
    return uri.lower().endswith(JSON_LINES_SUFFIXES)


def read_input(uri: str, reader: ByteReader = read_bytes) -> bytes:
    """The input's bytes, or DataError naming it (a missing file, no such S3 object, no access)."""
    try:
        return reader(uri)
    except FileNotFoundError:
        raise DataError(uri, "no such file") from None
    except Exception as exc:  # OSError, botocore's errors: whatever stops the read is the message
        raise DataError(uri, f"cannot be read ({exc})") from exc


# ------------------------------------------------------------------------------------------ outputs


class Output(Protocol):
    uri: str

    def write(self, batch: pa.RecordBatch) -> None: ...
    def close(self) -> Path: ...  # the finished file, not yet at `uri`


def _partial_path(uri: str) -> Path:
    """Where an output is written until it is complete: beside it (renamed into place), or a temporary
    file (put to S3), so a run that fails leaves no half-written file at the output's name."""
    if uri.startswith("s3://"):
        fd, name = tempfile.mkstemp(prefix="score-", suffix=".partial")
        os.close(fd)
        return Path(name)
    target = Path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.name}.partial")


class ParquetOutput:
    def __init__(self, uri: str, schema: pa.Schema) -> None:
        self.uri, self._path = uri, _partial_path(uri)
        self._writer = pq.ParquetWriter(self._path, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._writer.write_batch(batch)

    def close(self) -> Path:
        self._writer.close()
        return self._path


class JsonLinesOutput:
    """One JSON object per row (a timestamp as ISO 8601 text)."""

    def __init__(self, uri: str, schema: pa.Schema) -> None:
        self.uri, self._path = uri, _partial_path(uri)
        self._file = self._path.open("wb")

    def write(self, batch: pa.RecordBatch) -> None:
        self._file.writelines(
            orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in batch.to_pylist()
        )

    def close(self) -> Path:
        self._file.close()
        return self._path


def open_output(uri: str, schema: pa.Schema) -> Output:
    """JSON lines for a .jsonl/.ndjson/.json name, else parquet."""
    try:
        return JsonLinesOutput(uri, schema) if is_json_lines(uri) else ParquetOutput(uri, schema)
    except OSError as exc:
        raise ScoreError(f"cannot write {uri}: {exc}") from exc


def put_s3(uri: str, path: Path) -> None:
    """The one S3 write: a finished output file to s3://bucket/key (boto3 honours AWS_ENDPOINT_URL)."""
    import boto3

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    with path.open("rb") as body:
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def publish(path: Path, uri: str) -> None:
    """A finished file to its place: renamed there, or put to S3."""
    try:
        if uri.startswith("s3://"):
            put_s3(uri, path)
        else:
            os.replace(path, uri)
    except Exception as exc:  # OSError, botocore's errors
        raise ScoreError(f"cannot write {uri}: {exc}") from exc


@contextmanager
def outputs(targets: Sequence[tuple[str, pa.Schema]]) -> Iterator[list[Output]]:
    """The outputs, published when the block ends normally (the last first: the output after its rejects
    file, so an output never stands without its rejects), none if it raises."""
    opened: list[Output] = []
    try:
        for uri, schema in targets:
            opened.append(open_output(uri, schema))
        yield opened
    except BaseException:
        for out in opened:
            out.close().unlink(missing_ok=True)
        raise
    finished = [(out.close(), out.uri) for out in opened]
    try:
        for path, uri in reversed(finished):
            publish(path, uri)
    finally:
        for path, _ in finished:
            path.unlink(missing_ok=True)  # what was not published (a rename leaves nothing behind)


def default_rejects(output: str, suffix: str) -> str:
    """`<output stem><suffix>` beside the output: out/scored.parquet -> out/scored.rejects.parquet."""
    head, sep, name = output.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return f"{head}{sep}{stem}{suffix}"


# ------------------------------------------------------------------------------------------ the run


@dataclass
class Tally:
    rows: int = 0
    scored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by the first problem's field
    started: float = field(default_factory=time.perf_counter)

    def add(self, chunk: Chunk) -> None:
        self.rows += chunk.rows
        self.scored += chunk.scored.num_rows
        self.rejected.update(chunk.rejected_fields)

    def rate(self) -> float:
        return self.rows / max(time.perf_counter() - self.started, 1e-9)


def input_format(uris: Sequence[str]) -> InputFormat:
    return JSON_LINES if is_json_lines(uris[0]) else TLC_PARQUET


def score_inputs(
    uris: Sequence[str], scoring: Scoring, out: tuple[str, str], chunk_rows: int, reader: ByteReader
) -> Tally:
    """Every input, chunk by chunk, into the output and the rejects file (published once all is done)."""
    fmt = input_format(uris)
    tally = Tally()
    with outputs([(out[0], fmt.scored), (out[1], fmt.rejected)]) as (scored, rejected):
        for uri in uris:
            total, chunks = fmt.open(uri, read_input(uri, reader), scoring, chunk_rows)
            done = 0
            for chunk in chunks:
                scored.write(chunk.scored)
                rejected.write(chunk.rejected)
                tally.add(chunk)
                done += chunk.rows
                progress(uri, done, total, tally.rate())
    return tally


def progress(uri: str, done: int, total: int, rate: float) -> None:
    share = 100.0 * done / total if total else 100.0
    print(f"score: {uri}: {done:,}/{total:,} rows ({share:.0f} %), {rate:,.0f} rows/s", file=sys.stderr)


def load_model(args: argparse.Namespace, reader: ByteReader = read_bytes) -> Model:
    if args.bundle is not None:
        return local_model(args.bundle, args.version)
    return live_model(args.models_bucket, args.version, reader)


def run(args: argparse.Namespace, reader: ByteReader = read_bytes) -> dict[str, Any]:
    """Score `args.input` into `args.output` and the rejects file: the summary."""
    started = time.perf_counter()
    model = load_model(args, reader)
    scoring = Scoring(model, to_new_york_naive(datetime.now(UTC)).replace(microsecond=0))
    rejects = args.rejects or default_rejects(args.output, input_format(args.input).rejects_suffix)
    tally = score_inputs(args.input, scoring, (args.output, rejects), args.chunk_rows, reader)
    seconds = time.perf_counter() - started
    return {
        "inputs": list(args.input),
        "input_rows": tally.rows,
        "scored": tally.scored,
        "rejected": sum(tally.rejected.values()),
        "rejected_by_field": dict(sorted(tally.rejected.items())),
        "model_version": model.version,
        "output": args.output,
        "rejects": rejects,
        "seconds": round(seconds, 2),
        "rows_per_second": round(tally.rows / max(seconds, 1e-9)),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.score", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="FILE_OR_S3_URI",
        help="TLC parquet, or rides-stream JSON lines (.jsonl/.ndjson/.json); one format per run",
    )
    parser.add_argument(
        "--output", required=True, metavar="FILE_OR_S3_URI", help="parquet (.jsonl: JSON lines)"
    )
    parser.add_argument(
        "--rejects",
        metavar="FILE_OR_S3_URI",
        help="default: <output stem>.rejects.parquet (.jsonl for JSON input)",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        metavar="DIR",
        help="a local bundle (training.train --out DIR) instead of the live one",
    )
    parser.add_argument(
        "--models-bucket", default=os.environ.get("MODELS_BUCKET"), help="default: $MODELS_BUCKET"
    )
    parser.add_argument(
        "--version",
        help="a registered version (serving/versions/<v>.json) instead of the live one; with --bundle: the"
        " version written (default local-<sha256 prefix>)",
    )
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, metavar="N")
    args = parser.parse_args(argv)
    if args.bundle is None and not args.models_bucket:
        parser.error("no model: --bundle DIR, or --models-bucket (or MODELS_BUCKET) for the live one")
    if len({is_json_lines(uri) for uri in args.input}) > 1:
        parser.error("the inputs mix parquet and JSON lines: score each format in its own run")
    if args.rejects is not None and args.rejects == args.output:
        parser.error("--rejects must name another file than --output")
    if args.chunk_rows < 1:
        parser.error("--chunk-rows must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except (DataError, ScoreError) as exc:
        print(f"python -m training.score: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
