"""`make chaos`: faults taken away and restored under a stream of real rides on the LocalStack stack.

During a stream of real rides in pickup order (with 1% bad records), the predict function loses in turn
the model pointer, S3 (captures, rejections, model reads) and the predictions stream, each for longer
than the retries (the Kinesis event source's MaximumRetryAttempts, botocore's own retries, the pointer's
TTL), then gets it back. The outages of S3 and Kinesis are relays (relay.py) the function's SDK is
pointed at for the run (AWS_ENDPOINT_URL_S3 / _KINESIS); the pointer is deleted and put back.

Per fault: the rides in, out (predicted on the predictions stream, rejected with a reason), re-driven by
the replay of the failures queue (infra/replay_failures), lost, captured twice, and the alarms that
went to ALARM. Exit status 0 iff each fault lost nothing, captured nothing twice and raised its alarm.
"""
