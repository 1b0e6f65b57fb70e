"""Batch scoring (training/score.py) on a slice of a committed real month with bad rows injected: every row
scored or rejected with its field and reason, the answers the predict service gives, JSON lines, the live
bundle through the S3 pointer (moto) against a local one, and clear errors for inputs that cannot be read."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambda_predict.model_provider import ModelProvider
from lambda_predict.service import PredictService, prediction_record
from tests.doubles.moto_s3 import moto_s3
from tests.doubles.predict import InMemoryObjects, InMemoryStream, keyed_ids, publish, tiny_bundle
from training import score
from training.data import PICKUP, frame_features, load_month
from training.export import export_bundle
from training.model import ModelParams, fit
from trip_core.bundle import load_bundle
from trip_core.contracts import (
    BUNDLE_FILENAME,
    MAX_PICKUP_AGE_LIMIT,
    TLC_PICKUP_COLUMN,
    RideRequest,
)
from trip_core.rides import ValidRide, to_new_york_naive, validate_ride

ROOT = Path(__file__).parents[2]
MONTH = ROOT / "data" / "green_tripdata_2023-03.parquet"
SLICE_ROWS = 20_000
# position -> (column, value) written into the slice, and the (field, reason) each must be rejected with
INJECTED: dict[int, tuple[dict[str, Any], tuple[str, str]]] = {
    3: ({"PULocationID": 999}, ("PULocationID", "999 is not in the taxi-zone table")),
    7: ({"trip_distance": -2.5}, ("trip_distance", "must not be negative, got -2.5")),
    11: ({PICKUP: None}, (PICKUP, "must not be null")),
    13: ({"trip_distance": 1e6}, ("trip_distance", "must be at most 100 miles, got 1000000.0")),
    17: ({"DOLocationID": None}, ("DOLocationID", "must not be null")),
    19: ({"PULocationID": 999, "trip_distance": -1.0}, ("PULocationID", "999 is not in the taxi-zone table")),
    23: ({PICKUP: datetime(2100, 1, 1, 8)}, (PICKUP, "more than 24 h after arrival: '2100-01-01T08:00:00'")),
}
SCORED_COLUMNS = [
    "source",
    "row",
    "PULocationID",
    "DOLocationID",
    "trip_distance",
    PICKUP,
    "ride_duration",
    "model_version",
]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained quickly on the start of 2023-02, where `training.train --out DIR` puts one."""
    frame = load_month(str(ROOT / "data" / "green_tripdata_2023-02.parquet")).frame.head(20_000)
    model = fit(frame_features(frame), frame["duration"].to_numpy(), ModelParams(max_iter=30))
    out = tmp_path_factory.mktemp("model")
    (out / BUNDLE_FILENAME).write_bytes(export_bundle(model, {"model_name": "trip-duration"}))
    return out


@pytest.fixture(scope="module")
def month_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first SLICE_ROWS rows of 2023-03, every column as the file has it, with INJECTED written in."""
    table = pq.read_table(MONTH).slice(0, SLICE_ROWS)
    for name in {name for change, _ in INJECTED.values() for name in change}:
        values = table.column(name).to_pylist()
        for at, (change, _) in INJECTED.items():
            if name in change:
                values[at] = change[name]
        column = table.schema.get_field_index(name)
        table = table.set_column(
            column, table.schema.field(column), pa.array(values, table.schema.field(column).type)
        )
    path = tmp_path_factory.mktemp("input") / "slice.parquet"
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def scored(bundle_dir: Path, month_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("out") / "scored.parquet"
    summary = score.run(score.parse_args(cmd(month_slice, out, bundle_dir, "--chunk-rows", "7000")))
    return {
        "summary": summary,
        "output": pd.read_parquet(out),
        "rejects": pd.read_parquet(out.with_name("scored.rejects.parquet")),
    }


def cmd(source: Path | str, out: Path | str, bundle: Path | None, *more: str) -> list[str]:
    return [
        "--input",
        str(source),
        "--output",
        str(out),
        *(["--bundle", str(bundle)] if bundle else []),
        *more,
    ]


def test_every_row_is_scored_or_rejected_once(scored: dict[str, Any]) -> None:
    summary, output, rejects = scored["summary"], scored["output"], scored["rejects"]
    assert summary["input_rows"] == SLICE_ROWS == summary["scored"] + summary["rejected"]
    assert (len(output), len(rejects)) == (summary["scored"], summary["rejected"])
    rows = np.concatenate([output["row"].to_numpy(), rejects["row"].to_numpy()])
    assert np.array_equal(np.sort(rows), np.arange(SLICE_ROWS))  # none lost, none twice
    assert sum(summary["rejected_by_field"].values()) == summary["rejected"]
    assert output["row"].is_monotonic_increasing  # input order, across chunks of 7000


def test_bad_rows_carry_the_validators_field_and_reason(scored: dict[str, Any]) -> None:
    rejects = scored["rejects"].set_index("row")
    for at, (_, (field, reason)) in INJECTED.items():
        assert (rejects.loc[at, "field"], rejects.loc[at, "reason"]) == (field, reason)
    both = [(r["field"], r["reason"]) for r in rejects.loc[19, "reasons"]]
    assert both == [
        ("PULocationID", "999 is not in the taxi-zone table"),
        ("trip_distance", "must not be negative, got -1.0"),
    ]
    assert rejects["field"].notna().all() and (rejects["reason"].str.len() > 0).all()
    assert np.isnan(rejects.loc[17, "DOLocationID"])  # the row's values as read: the null stays missing
    assert scored["summary"]["rejected_by_field"]["PULocationID"] == 2


def test_scored_rows_are_rides_the_service_accepts(scored: dict[str, Any]) -> None:
    output = scored["output"]
    assert list(output.columns) == SCORED_COLUMNS
    assert output["ride_duration"].between(0, 24 * 60).all()
    assert set(output["model_version"]) == {scored["summary"]["model_version"]}
    assert scored["summary"]["model_version"].startswith("local-")
    arrival = datetime(2023, 4, 1)
    for ride in output.sample(200, random_state=0).itertuples():
        payload = RideRequest.from_row(ride.row, ride).to_payload()
        assert isinstance(validate_ride(payload, arrival, MAX_PICKUP_AGE_LIMIT), ValidRide)


def test_predictions_are_the_predict_services(scored: dict[str, Any], bundle_dir: Path) -> None:
    models = InMemoryObjects()
    publish(models, "3", (bundle_dir / BUNDLE_FILENAME).read_bytes())
    provider = ModelProvider(models, "serving/live.json", load_bundle, ttl_seconds=60)
    service = PredictService(
        provider,
        InMemoryStream(),
        InMemoryObjects(),
        InMemoryObjects(),
        keyed_ids(),
        now=lambda: datetime(2023, 4, 1, tzinfo=UTC),
        max_pickup_age=MAX_PICKUP_AGE_LIMIT,
    )
    sample = scored["output"].sample(25, random_state=1)
    for ride in sample.itertuples():
        answer = service.predict_direct(RideRequest.from_row(ride.row, ride).to_payload(), "req").response
        assert answer["prediction"]["ride_duration"] == ride.ride_duration
    assert score.PREDICTION_COLUMN in prediction_record(provider.load_initial(), 1, 2.0, "id")["prediction"]


def test_a_ride_without_a_plausible_answer_is_rejected_as_the_service_rejects_it() -> None:
    # 5 + 3000 min for rides over 2 miles: over MAX_RIDE_MINUTES (no smoke test, to get such a model)
    model = score.Model(load_bundle(tiny_bundle(minutes_per_mile=3000.0)), "9")
    batch = pa.RecordBatch.from_pydict(
        {
            "PULocationID": [130, 130],
            "DOLocationID": [205, 205],
            "trip_distance": [1.0, 3.0],
            PICKUP: pa.array([datetime(2023, 3, 6, 14, 30)] * 2, pa.timestamp("us")),
        }
    )
    chunk = score.score_tlc(batch, 100, "f", score.Scoring(model, datetime(2023, 3, 7)))
    assert chunk.scored.to_pydict()["row"] == [100] and chunk.scored.to_pydict()["ride_duration"] == [5.0]
    rejected = chunk.rejected.to_pydict()
    assert rejected["row"] == [101]
    assert (rejected["field"], rejected["reason"]) == (
        ["prediction"],
        ["model answered 3005 minutes, outside [0, 1440]"],
    )


def json_lines(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """200 real rides of 2023-03 as rides-stream records (ride_id = row), then bad lines."""
    rides = pd.read_parquet(MONTH).head(200)
    lines = [
        json.dumps(RideRequest.from_row(i, ride).to_payload()) for i, ride in enumerate(rides.itertuples())
    ]
    lines += [
        "",  # 201
        "not json",  # 202
        '{"ride_id": 5}',  # 203
        '{"ride": {"PULocationID": 130, "DOLocationID": 999, "trip_distance": 3.0}, "ride_id": 6}',  # 204
        '{"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": true}, "ride_id": 7}',  # 205
        '{"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": "no-pickup"}',
    ]
    path = tmp_path / "rides.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, rides


def test_json_lines_are_judged_by_the_ride_validator(
    tmp_path: Path, bundle_dir: Path, scored: dict[str, Any]
) -> None:
    path, rides = json_lines(tmp_path)
    out = tmp_path / "scored.parquet"
    summary = score.run(score.parse_args(cmd(path, out, bundle_dir, "--chunk-rows", "64")))
    assert (summary["input_rows"], summary["scored"], summary["rejected"]) == (206, 201, 5)
    rejects = [json.loads(line) for line in (tmp_path / "scored.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [
        (201, "data", "not valid JSON"),
        (202, "data", "not valid JSON"),
        (203, "ride", "missing"),
        (204, "DOLocationID", "999 is not in the taxi-zone table"),
        (205, "trip_distance", "must be a number, got bool"),
    ]
    assert rejects[3]["data"].startswith('{"ride": {"PULocationID": 130')
    output = pd.read_parquet(out)
    by_id = output.set_index("ride_id")
    scoring_time = to_new_york_naive(datetime.now(UTC))  # stands in for the missing pickup
    assert abs(by_id.loc["no-pickup", "pickup_datetime"] - scoring_time) < timedelta(minutes=10)
    parquet = scored["output"].set_index("row")  # the same rides in the TLC path: the same answers
    same = [i for i in range(200) if i in parquet.index]
    assert same and all(by_id.loc[str(i), "ride_duration"] == parquet.loc[i, "ride_duration"] for i in same)
    assert by_id.loc["0", "line"] == 1 and len(rides) == 200  # lines counted from 1


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_s3(monkeypatch, "models", "data") as client:
        yield client


def put_version(s3: Any, version: str, bundle: bytes, live: bool = True) -> None:
    bucket = InMemoryObjects()
    publish(bucket, version, bundle, live=live)
    for key, body in bucket.objects.items():
        s3.put_object(Bucket="models", Key=key, Body=body)


def test_the_live_bundle_through_the_pointer_scores_as_the_local_bundle(
    s3: Any, bundle_dir: Path, month_slice: Path, scored: dict[str, Any]
) -> None:
    put_version(s3, "3", (bundle_dir / BUNDLE_FILENAME).read_bytes())
    put_version(s3, "2", tiny_bundle(), live=False)
    s3.put_object(Bucket="data", Key="in/slice.parquet", Body=month_slice.read_bytes())
    args = cmd(
        "s3://data/in/slice.parquet", "s3://data/out/scored.parquet", None, "--models-bucket", "models"
    )
    summary = score.run(score.parse_args(args))
    assert (summary["model_version"], summary["rejects"]) == ("3", "s3://data/out/scored.rejects.parquet")
    output = pd.read_parquet(
        io.BytesIO(s3.get_object(Bucket="data", Key="out/scored.parquet")["Body"].read())
    )
    local = scored["output"]
    assert np.array_equal(output["ride_duration"].to_numpy(), local["ride_duration"].to_numpy())
    assert set(output["model_version"]) == {"3"}
    rejects = s3.get_object(Bucket="data", Key="out/scored.rejects.parquet")["Body"].read()
    assert len(pd.read_parquet(io.BytesIO(rejects))) == summary["rejected"]
    pinned = score.run(score.parse_args([*args, "--version", "2"]))
    assert pinned["model_version"] == "2"


def test_a_bundle_whose_checksum_the_pointer_does_not_match_is_not_used(
    s3: Any, bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put_version(s3, "3", tiny_bundle())
    s3.put_object(Bucket="models", Key="models/trip-duration/3/bundle.npz", Body=tiny_bundle(base=6.0))
    code = score.main(cmd(MONTH, tmp_path / "o.parquet", None, "--models-bucket", "models"))
    assert code == 1 and "checksum mismatch" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_summary_on_stdout_and_progress_on_stderr(
    bundle_dir: Path, month_slice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert score.main(cmd(month_slice, tmp_path / "o.parquet", bundle_dir, "--chunk-rows", "10000")) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["input_rows"] == SLICE_ROWS and summary["rows_per_second"] > 0
    assert "10,000/20,000 rows (50 %)" in captured.err and "20,000/20,000 rows (100 %)" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.parquet", "o.rejects.parquet"]  # no partial left


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (None, "no such file"),
        (lambda p: p.write_bytes(b"not parquet"), "not a parquet file"),
        (
            lambda p: pq.write_table(pa.table({"trip_distance": [1.0]}), p),
            "column 'PULocationID': missing column",
        ),
    ],
)
def test_an_input_that_cannot_be_read_fails_naming_it(
    make: Any, message: str, bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in" / "green.parquet"
    if make is not None:
        source.parent.mkdir()
        make(source)
    out = tmp_path / "out" / "o.parquet"
    assert score.main(cmd(source, out, bundle_dir)) == 1
    err = capsys.readouterr().err
    assert str(source) in err and message in err
    assert not list(out.parent.iterdir())  # nothing published, nothing half-written


def test_usage_errors() -> None:
    with pytest.raises(SystemExit):
        score.parse_args(["--input", "a.parquet", "--output", "o.parquet"])  # no model named
    with pytest.raises(SystemExit):
        score.parse_args(["--input", "a.parquet", "b.jsonl", "--output", "o.parquet", "--bundle", "m"])
    assert (
        score.default_rejects("s3://b/out/scored.parquet", ".rejects.jsonl")
        == "s3://b/out/scored.rejects.jsonl"
    )
    assert TLC_PICKUP_COLUMN == PICKUP


def test_an_output_that_cannot_be_written_fails_the_run(
    s3: Any, bundle_dir: Path, month_slice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = score.main(cmd(month_slice, "s3://no-such-bucket/scored.parquet", bundle_dir))
    assert code == 1 and "cannot write s3://no-such-bucket/scored" in capsys.readouterr().err
