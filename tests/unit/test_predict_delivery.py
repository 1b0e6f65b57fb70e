"""PutRecords delivery: chunking, retry of failed entries with backoff, bounded attempts."""

from __future__ import annotations

from lambda_predict.delivery import MAX_BYTES_PER_RECORD, RetryPolicy, deliver, entry_problem
from lambda_predict.ports import PutEntry
from tests.doubles.predict import InMemoryStream


def entries(n: int, size: int = 10) -> list[PutEntry]:
    return [PutEntry(str(i), b"x" * size) for i in range(n)]


def test_chunks_of_at_most_500() -> None:
    stream = InMemoryStream()
    assert deliver(stream, entries(1001), sleep=lambda _: None) == {}
    assert stream.calls == [500, 500, 1]


def test_chunks_respect_five_megabytes() -> None:
    stream = InMemoryStream()
    assert deliver(stream, entries(12, size=1_000_000), sleep=lambda _: None) == {}
    assert stream.calls == [5, 5, 2]


def test_only_failed_entries_are_retried_with_growing_delays() -> None:
    stream, sleeps = InMemoryStream(), list[float]()
    stream.fail_next = [{1, 3}, {0}, set()]
    assert (
        deliver(stream, entries(4), RetryPolicy(max_attempts=4, base_delay_seconds=0.1), sleeps.append) == {}
    )
    assert stream.calls == [4, 2, 1]
    assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2
    assert sorted(e.partition_key for e in stream.records) == ["0", "1", "2", "3"]


def test_attempts_are_bounded_and_leftovers_reported() -> None:
    stream = InMemoryStream()
    stream.fail_next = [{2}, {0}, {0}]
    undelivered = deliver(stream, entries(3), RetryPolicy(max_attempts=3), sleep=lambda _: None)
    assert undelivered == {2: "ProvisionedThroughputExceededException"}
    assert stream.calls == [3, 1, 1]


def test_a_raising_call_fails_all_its_entries() -> None:
    stream = InMemoryStream()
    stream.down = True
    assert set(deliver(stream, entries(2), RetryPolicy(max_attempts=2), sleep=lambda _: None)) == {0, 1}
    assert stream.calls == [2, 2]


def test_an_entry_larger_than_a_kinesis_record_is_named_before_any_call() -> None:
    """data + partition key over 1 MiB fails its whole PutRecords call on every retry: the service
    rejects that ride instead (lambda_predict.service._entry)."""
    at_limit = PutEntry("7", b"x" * (MAX_BYTES_PER_RECORD - 1))
    assert entry_problem(at_limit) is None
    over = PutEntry("77", at_limit.data)
    assert (
        entry_problem(over)
        == f"{MAX_BYTES_PER_RECORD + 1} bytes, over the {MAX_BYTES_PER_RECORD} of a Kinesis record"
    )
