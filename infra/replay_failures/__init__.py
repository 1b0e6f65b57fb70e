"""`make replay-failures`: re-drive the batches a stream function gave up on.

A Kinesis event source mapping that still fails a batch after `MaximumRetryAttempts` (or whose records
grow older than `MaximumRecordAgeInSeconds`) moves on and writes an invocation record to its OnFailure
queue: the batch's shard and sequence range, no payload. This tool reads each such record, reads that
exact range back from the stream (while the stream still holds it), and invokes the function with a
Kinesis-shaped event of those records: the same shard, sequence numbers, data and arrival times, so
the function gives them the same prediction ids and writes the same capture keys (a replay overwrites
its own objects; replaying twice leaves the capture as after once). A message is deleted only when its
whole range was re-driven and the function reported no record for retry; otherwise it is kept and
reported: loudly as LOST when the stream no longer holds the whole range.

`failure.py` reads the invocation record, `service.py` is the logic (no AWS SDK), `ports.py` what it
needs, `aws.py` the boto3 adapters and the stack's outputs.
"""
