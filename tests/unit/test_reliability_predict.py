"""Property-based reliability of the ride validator and the predict handler (issue 8, "Bad input").

Every record of a batch -- arbitrary bytes, arbitrary JSON, not-base64 text, mutated valid rides,
valid rides -- must end as exactly one of: a prediction (on the stream AND in the capture object) or
a stored rejection with at least one (field, reason); the handler never raises and never reports a
record for retry while every dependency is up (a bad record must not block the shard). With faults
injected (throttled PutRecords entries, stream / capture bucket / rejected bucket down) every record
is still accounted for: predicted, rejected, or in batchItemFailures -- never lost, and never put on
the stream twice within one delivery.

Run with `-s` to see the tally (examples tried, records sent/predicted/rejected/retried/lost/duplicated).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_predict.delivery import RetryPolicy
from lambda_predict.handler import handle_batch, handle_ride
from lambda_predict.model_provider import ModelProvider
from lambda_predict.service import PredictService
from tests.doubles.predict import InMemoryObjects, InMemoryStream, keyed_ids, publish, tiny_bundle
from tests.unit.test_predict_service import NOW, event, good, kinesis_record
from trip_core.bundle import load_bundle
from trip_core.capture import decode_capture, decode_rejected
from trip_core.observability import metrics
from trip_core.rides import ValidRide, validate_record_data, validate_ride

TALLY: Counter[str] = Counter()
EXAMPLES = 300  # per property test; the tally counts what actually ran
ARRIVAL = datetime(2023, 3, 6, 19, 30, 2, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def _print_tally() -> Iterator[None]:
    yield
    print(f"\n[reliability/predict] {dict(sorted(TALLY.items()))}")


class Fakes:
    """One service over in-memory fakes, reset before each example (hypothesis reuses it)."""

    def __init__(self) -> None:
        models = InMemoryObjects()
        publish(models, "3", tiny_bundle())
        provider = ModelProvider(models, "serving/live.json", load_bundle, ttl_seconds=60)
        provider.load_initial()
        self.stream, self.captures, self.rejected = InMemoryStream(), InMemoryObjects(), InMemoryObjects()
        self.service = PredictService(
            provider,
            self.stream,
            self.captures,
            self.rejected,
            keyed_ids(),
            RetryPolicy(max_attempts=3),
            sleep=lambda _s: None,
            now=lambda: NOW,
        )

    def reset(self) -> None:
        for store in (self.captures, self.rejected):
            store.objects.clear()
            store.puts.clear()
            store.down = False
        self.stream.records.clear()
        self.stream.calls.clear()
        self.stream.fail_next = []
        self.stream.down = False
        metrics.clear_metrics()


FAKES = Fakes()

# ------------------------------------------------------------------------------------ strategies

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
RIDE_FIELDS = ["PULocationID", "DOLocationID", "trip_distance", "pickup_datetime"]
ODD_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from([0, -1, 264, 265, 10**70, 1.5, 100.0001, -0.0, "130", "", " ", True]),
    st.builds(list),  # a fresh empty container per draw: a shared one, mutated, became a cycle
    st.builds(dict),
    st.sampled_from(
        ["2023-03-06T14:30:00", "2023-03-06T14:30:00+05:00", "2023-13-45", "9999-12-31T23:59:59Z"]
    ),
)


@st.composite
def mutated_payload(draw: st.DrawFn) -> Any:
    """A valid ride, 1-3 mutations: a field dropped, retyped/replaced, an extra key, the envelope broken."""
    payload: dict[str, Any] = good(draw(st.integers(1, 10**6)), draw(st.floats(0, 100)))
    if draw(st.booleans()):
        payload["ride"]["pickup_datetime"] = "2023-03-06T14:30:00"
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["drop", "replace", "extra", "ride_id", "ride", "top"]))
        if kind == "drop" and isinstance(payload.get("ride"), dict) and payload["ride"]:
            payload["ride"].pop(draw(st.sampled_from(sorted(payload["ride"]))), None)
        elif kind == "replace" and isinstance(payload.get("ride"), dict):
            payload["ride"][draw(st.sampled_from(RIDE_FIELDS))] = draw(ODD_VALUES)
        elif kind == "extra":
            payload[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        elif kind == "ride_id":
            payload["ride_id"] = draw(ODD_VALUES)
        elif kind == "ride":
            payload["ride"] = draw(ODD_VALUES)
        elif kind == "top":
            return draw(ODD_VALUES)
    return payload


@st.composite
def mutated_ride(draw: st.DrawFn) -> bytes:
    """A mutated ride as record bytes; one in ten is truncated JSON."""
    text = json.dumps(draw(mutated_payload()))
    if draw(st.integers(0, 9)) == 0:  # truncated JSON
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    return text.encode()


@st.composite
def valid_ride(draw: st.DrawFn) -> bytes:
    ride = good(draw(st.integers(1, 10**9)), draw(st.floats(0, 100)))
    ride["ride"]["PULocationID"] = draw(st.integers(1, 263))
    ride["ride"]["DOLocationID"] = draw(st.integers(1, 263))
    return json.dumps(ride).encode()


# (kind, base64 data) -- the kind is only for the tally
RECORD_DATA = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())),
    st.tuples(st.just("json"), JSON_VALUES.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode())),
    st.tuples(st.just("not_base64"), st.text(max_size=40)),
    st.tuples(st.just("mutated"), mutated_ride().map(lambda b: base64.b64encode(b).decode())),
    st.tuples(st.just("valid"), valid_ride().map(lambda b: base64.b64encode(b).decode())),
)


def build_event(items: list[tuple[str, str]]) -> dict[str, Any]:
    records = []
    for seq, (_, data) in enumerate(items, start=1):
        record = kinesis_record(seq, None, raw=b"")
        record["kinesis"]["data"] = data
        records.append(record)
    return event(*records)


def accounted(fakes: Fakes, response: dict[str, Any], n: int) -> dict[str, int]:
    """Check that every record is in exactly one outcome; returns the counts."""
    retried = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    rejected_seqs: list[str] = []
    for body in fakes.rejected.objects.values():
        for rejection in decode_rejected(body):
            assert rejection.reasons, rejection
            assert all(r.field and r.reason for r in rejection.reasons), rejection
            rejected_seqs.append(rejection.sequence_number)
    captured: list[Any] = []
    for body in fakes.captures.objects.values():
        captured.extend(decode_capture(body).ride_id)
    streamed = [json.loads(entry.data)["prediction"]["ride_id"] for entry in fakes.stream.records]
    assert len(rejected_seqs) == len(set(rejected_seqs)), "a record rejected twice"
    assert len(retried) == len(set(retried))
    # captured rides were delivered (capture happens after delivery, for the delivered ones only)
    assert Counter(captured) <= Counter(streamed)
    handled = set(rejected_seqs) | set(retried)
    predicted_and_final = len(captured)
    # each record: rejected XOR retried XOR (predicted and captured)
    assert not set(rejected_seqs) & set(retried)
    assert predicted_and_final + len(handled) == n, (predicted_and_final, rejected_seqs, retried, n)
    duplicated = len(streamed) - len(set(map(str, streamed))) if len(streamed) == n else 0
    return {
        "predicted": predicted_and_final,
        "rejected": len(rejected_seqs),
        "retried": len(retried),
        "streamed_not_captured": len(streamed) - len(captured),
        "duplicated": duplicated,
    }


# ----------------------------------------------------------------------------------- properties


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RECORD_DATA, min_size=1, max_size=25))
def test_every_record_is_predicted_or_rejected_with_a_reason(items: list[tuple[str, str]]) -> None:
    FAKES.reset()
    response = handle_batch(build_event(items), None, FAKES.service)
    assert response["batchItemFailures"] == [], "a bad record blocked the shard"
    counts = accounted(FAKES, response, len(items))
    # the validator is the oracle: predicted exactly when valid
    expected_valid = sum(
        isinstance(validate_record_data(data, datetime(2023, 3, 6, 14, 30, 2)), ValidRide)
        for _, data in items
    )
    assert counts["predicted"] == expected_valid
    assert counts["predicted"] + counts["rejected"] == len(items)
    assert counts["streamed_not_captured"] == 0
    # within one delivery a record is put on the stream once
    assert len(FAKES.stream.records) == counts["predicted"]
    TALLY["handler_examples"] += 1
    TALLY["records_sent"] += len(items)
    TALLY["records_predicted"] += counts["predicted"]
    TALLY["records_rejected"] += counts["rejected"]
    TALLY["records_lost"] += len(items) - counts["predicted"] - counts["rejected"]
    TALLY.update(f"kind_{kind}" for kind, _ in items)


FAULTS = st.fixed_dictionaries(
    {
        "throttle": st.lists(st.sets(st.integers(0, 24), max_size=6), max_size=3),
        "stream_down": st.booleans(),
        "capture_down": st.booleans(),
        "rejected_down": st.booleans(),
    }
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RECORD_DATA, min_size=1, max_size=25), FAULTS)
def test_with_faults_every_record_is_predicted_rejected_or_retried(
    items: list[tuple[str, str]], faults: dict[str, Any]
) -> None:
    FAKES.reset()
    FAKES.stream.fail_next = [set(s) for s in faults["throttle"]]
    FAKES.stream.down = faults["stream_down"]
    FAKES.captures.down = faults["capture_down"]
    FAKES.rejected.down = faults["rejected_down"]
    response = handle_batch(build_event(items), None, FAKES.service)  # never raises
    counts = accounted(FAKES, response, len(items))
    # a retry is only ever reported because of an injected fault
    if counts["retried"]:
        assert (
            faults["stream_down"]
            or faults["capture_down"]
            or faults["rejected_down"]
            or len(faults["throttle"]) >= RetryPolicy(max_attempts=3).max_attempts
        )
    # ride ids are unique among the valid rides of a batch (high chance); none put twice in one delivery
    valid_ids = [
        r.ride_id
        for _, data in items
        if isinstance(r := validate_record_data(data, datetime(2023, 3, 6)), ValidRide)
    ]
    if len(valid_ids) == len(set(map(str, valid_ids))):
        keys = [entry.partition_key for entry in FAKES.stream.records]
        assert len(keys) == len(set(keys)), "a prediction was put twice within one delivery"
    TALLY["fault_examples"] += 1
    TALLY["faults_injected"] += (
        len(faults["throttle"]) + faults["stream_down"] + faults["capture_down"] + faults["rejected_down"]
    )
    TALLY["fault_records_sent"] += len(items)
    TALLY["fault_records_predicted"] += counts["predicted"]
    TALLY["fault_records_rejected"] += counts["rejected"]
    TALLY["fault_records_retried"] += counts["retried"]


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(JSON_VALUES, mutated_payload()))
def test_direct_invoke_answers_a_prediction_or_reasons(payload: Any) -> None:
    FAKES.reset()
    answer = handle_ride(payload, None, FAKES.service)
    if "error" in answer:
        assert answer["reasons"] and all(r["field"] and r["reason"] for r in answer["reasons"])
        assert not isinstance(validate_ride(payload, NOW), ValidRide)
        TALLY["direct_rejected"] += 1
    else:
        assert answer["prediction"]["ride_duration"] > 0
        TALLY["direct_predicted"] += 1
    TALLY["direct_examples"] += 1


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_validator_on_arbitrary_record_bytes_returns_a_ride_or_named_reasons(raw: bytes) -> None:
    result = validate_record_data(base64.b64encode(raw).decode(), ARRIVAL)
    if not isinstance(result, ValidRide):
        assert result and all(e.field and e.reason for e in result)
    TALLY["validator_examples"] += 1


# --------------------------------------------------- issue 14: the whole of Unicode, every JSON shape
# Record data is JSON *text* drawn directly, so it can hold what json.dumps never writes: duplicate keys,
# integers beyond int()'s 4,300-digit limit, 1e400, strings from the whole of Unicode -- lone surrogates
# included -- written raw (then the bytes are not UTF-8) or as \uXXXX escapes (then they decode to a str
# no UTF-8 encoder takes).


def _object_text(pairs: list[tuple[str, str]]) -> str:
    """A JSON object from (key text, value text) pairs, in order: a key may repeat."""
    return "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"


# the whole of Unicode; half the texts also draw surrogates (0.2% of it) as often as all the rest
ANY_CHARACTER = st.characters(exclude_categories=())
UNICODE_TEXT = st.text(ANY_CHARACTER, max_size=12) | st.lists(
    ANY_CHARACTER | st.characters(categories=["Cs"]), max_size=12
).map("".join)
JSON_STRING = st.builds(
    lambda text, escaped: json.dumps(text, ensure_ascii=escaped), UNICODE_TEXT, st.booleans()
)
NUMBER_TEXT = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(19, 5000).map(lambda digits: "9" * digits),  # beyond 64 bits, a float, int()'s limit
    st.floats().map(json.dumps),  # NaN, Infinity and -Infinity literals included
    st.sampled_from(["1e400", "-1e400", "1E-400", "-0", "0.0", "130.0", "205", "3.66", "1.5e2"]),
)
RIDE_KEYS = ["ride", "ride_id", "PULocationID", "DOLocationID", "trip_distance", "pickup_datetime"]
KEY_TEXT = st.sampled_from(RIDE_KEYS).map(json.dumps) | JSON_STRING
JSON_TEXT = st.recursive(
    st.sampled_from(["null", "true", "false"]) | NUMBER_TEXT | JSON_STRING,
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(KEY_TEXT, children), max_size=4).map(_object_text)
    ),
    max_leaves=12,
)


# pickups around the records' arrival (14:30:02 New York on 2023-03-06) and the ends of datetime
PICKUP_TEXT = st.one_of(
    st.datetimes(datetime(2023, 2, 18), datetime(2023, 3, 8)).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59-12:00",
            "1970-01-01T00:00:00Z",
            "2023-03-07T14:30:02",
            "2023-03-07T14:30:03",
            "2023-02-20T14:30:02",
            "2023-02-20T14:30:01",
        ]
    ),
    UNICODE_TEXT,
).map(json.dumps)


@st.composite
def ride_text(draw: st.DrawFn) -> str:
    """A ride's JSON text, valid or nearly: values replaced by any JSON, keys repeated or added, the ride
    id any JSON (a string of the whole of Unicode, escaped or raw), any pickup."""
    ride = [
        ('"PULocationID"', str(draw(st.integers(1, 263)))),
        ('"DOLocationID"', str(draw(st.integers(1, 263)))),
        ('"trip_distance"', json.dumps(draw(st.floats(0, 100)))),
    ]
    if draw(st.booleans()):
        ride.append(('"pickup_datetime"', draw(PICKUP_TEXT)))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        kind = draw(st.sampled_from(["replace", "repeat", "add"]))
        if kind == "replace":
            i = draw(st.integers(0, len(ride) - 1))
            ride[i] = (ride[i][0], draw(JSON_TEXT))
        elif kind == "repeat":
            ride.append((draw(st.sampled_from(ride))[0], draw(JSON_TEXT)))
        else:
            ride.append((draw(KEY_TEXT), draw(JSON_TEXT)))
    ride_id = draw(st.integers(0, 10**9).map(str) | JSON_STRING | JSON_TEXT)
    top = [('"ride"', _object_text(draw(st.permutations(ride)))), ('"ride_id"', ride_id)]
    if draw(st.integers(0, 4)) == 0:
        top.append((draw(KEY_TEXT), draw(JSON_TEXT)))
    return _object_text(draw(st.permutations(top)))


def _record_data(text: str) -> str:
    """base64 of the text's bytes: a raw lone surrogate is written as its (invalid) UTF-8 bytes."""
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


UNICODE_RECORDS = st.one_of(
    st.tuples(st.just("json_text"), JSON_TEXT.map(_record_data)),
    st.tuples(st.just("ride_text"), ride_text().map(_record_data)),
    # as the event's data string itself, the way the runtime parses the event's JSON (a surrogate pair
    # of escapes is one character there)
    st.tuples(st.just("unicode_not_base64"), UNICODE_TEXT.map(lambda text: json.loads(json.dumps(text)))),
)
LOCAL_ARRIVAL = datetime(2023, 3, 6, 14, 30, 2)  # the test records' arrival, New York local


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(UNICODE_RECORDS, min_size=1, max_size=25))
def test_whole_unicode_and_every_json_shape_end_predicted_or_rejected_exactly_once(
    items: list[tuple[str, str]],
) -> None:
    FAKES.reset()
    response = handle_batch(build_event(items), None, FAKES.service)  # never raises
    assert response["batchItemFailures"] == [], "a record failed its batch"
    counts = accounted(FAKES, response, len(items))
    stored = {r.sequence_number: r for body in FAKES.rejected.objects.values() for r in decode_rejected(body)}
    for seq, (_, data) in enumerate(items, start=1):
        verdict = validate_record_data(data, LOCAL_ARRIVAL)
        if isinstance(verdict, ValidRide):  # predicted: on the stream and captured
            assert str(seq) not in stored
        else:  # rejected once, with its own payload and a field and reason for each problem
            assert stored[str(seq)].raw_base64 == data
            assert stored[str(seq)].reasons == tuple(verdict)
    assert counts["predicted"] == len(FAKES.stream.records) == len(items) - len(stored)
    TALLY["unicode_examples"] += 1
    TALLY["unicode_records_sent"] += len(items)
    TALLY["unicode_records_predicted"] += counts["predicted"]
    TALLY["unicode_records_rejected"] += counts["rejected"]
    TALLY["unicode_predicted_non_ascii_id"] += sum(
        not entry.partition_key.isascii() for entry in FAKES.stream.records
    )
    TALLY.update(f"unicode_kind_{kind}" for kind, _ in items)
    TALLY.update(f"unicode_reason_{reason.field}" for r in stored.values() for reason in r.reasons[:1])


@settings(max_examples=EXAMPLES, deadline=None)
@given(JSON_TEXT | ride_text())
def test_direct_invoke_of_any_json_answers_a_prediction_or_reasons(text: str) -> None:
    """What the Lambda runtime can parse of it (json.loads) is the payload."""
    try:
        payload = json.loads(text)
    except ValueError:  # not a payload the runtime would hand over (an int beyond 4,300 digits)
        return
    FAKES.reset()
    answer = handle_ride(payload, None, FAKES.service)
    if "error" in answer:
        assert answer["reasons"] and all(r["field"] and r["reason"] for r in answer["reasons"])
    else:
        assert isinstance(validate_ride(payload, NOW), ValidRide)
        json.dumps(answer)  # the runtime can serialise the answer
