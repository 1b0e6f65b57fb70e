"""Runtime loop of one local Lambda execution environment (stdlib only; runs on the function's Python).

Started by executor.py with the Lambda environment. It imports the handler (`_HANDLER`, from
LAMBDA_TASK_ROOT), posts `status/{id}/ready` (or `status/{id}/error` if the import fails), then
serves POST /invoke on 127.0.0.1:LOCAL_EXECUTOR_PORT. Each invoke runs on the main thread, one at a
time, and is answered like the Docker runtime-init does: POST invocations/{id}/logs, then
invocations/{id}/response or invocations/{id}/error on LOCALSTACK_RUNTIME_ENDPOINT.
"""

import importlib
import io
import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENDPOINT = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"]
RUNTIME_ID = os.environ["LOCALSTACK_RUNTIME_ID"]
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def post(path, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"{ENDPOINT}{path}", data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    _opener.open(req, timeout=30).read()


class Tee(io.TextIOBase):
    """stdout/stderr: to the process log file and to the current invocation's log buffer."""

    buffer_lock = threading.Lock()
    captured: list = []  # noqa: RUF012 (shared on purpose: stdout and stderr feed one buffer)

    def __init__(self, stream):
        self.stream = stream

    def write(self, s):
        self.stream.write(s)
        with self.buffer_lock:
            self.captured.append(s)
        return len(s)

    def flush(self):
        self.stream.flush()

    @classmethod
    def take(cls):
        with cls.buffer_lock:
            text, cls.captured[:] = "".join(cls.captured), []
        return text


class Context:
    """The Lambda context object handed to the handler."""

    def __init__(self, request_id, invoked_arn, deadline_ms):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))


class RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record):
        record.aws_request_id = self.request_id
        return True


def error_body(exc, request_id):
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(
            exc.__traceback__.tb_next or exc.__traceback__
        ),  # from the handler on
    }


def load_handler():
    module_name, _, func_name = os.environ["_HANDLER"].rpartition(".")
    return getattr(importlib.import_module(module_name.replace("/", ".")), func_name)


def serve(invokes):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # /ping: the executor's liveness check after a reset
            self.send_response(200)
            self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            invokes.put(json.loads(body))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["LOCAL_EXECUTOR_PORT"])), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def invoke(handler, inv, request_filter):
    request_id = inv["invoke-id"]
    os.environ["_X_AMZN_TRACE_ID"] = inv.get("trace-id", "")
    request_filter.request_id = request_id
    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    print(f"START RequestId: {request_id} Version: {version}")
    started = time.monotonic()
    try:
        event = json.loads(inv["payload"]) if inv.get("payload") else {}
        result = handler(event, Context(request_id, inv.get("invoked-function-arn", ""), inv["deadline-ms"]))
        try:
            outcome = ("response", json.dumps(result).encode())
        except (TypeError, ValueError) as exc:
            body = error_body(exc, request_id)
            body["errorType"] = "Runtime.MarshalError"
            outcome = ("error", body)
    except Exception as exc:
        body = error_body(exc, request_id)
        print(f"[ERROR] {body['errorType']}: {body['errorMessage']}\n{''.join(body['stackTrace'])}", end="")
        outcome = ("error", body)
    ms = (time.monotonic() - started) * 1000
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    print(f"END RequestId: {request_id}")
    print(
        f"REPORT RequestId: {request_id}\tDuration: {ms:.2f} ms\tBilled Duration: {int(ms) + 1} ms\t"
        f"Memory Size: {memory} MB"
    )
    sys.stdout.flush()
    post(f"/invocations/{request_id}/logs", {"logs": Tee.take()})
    post(f"/invocations/{request_id}/{outcome[0]}", outcome[1])


def main():
    sys.stdout, sys.stderr = Tee(sys.__stdout__), Tee(sys.__stderr__)
    request_filter = RequestIdFilter()
    root_handler = logging.StreamHandler(sys.stdout)  # like the Lambda runtime's root logger handler
    root_handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )
    )
    root_handler.addFilter(request_filter)
    logging.getLogger().addHandler(root_handler)
    sys.path[:0] = [os.environ["LAMBDA_TASK_ROOT"]]
    restart = os.environ.get("LOCAL_EXECUTOR_RESTART") == "1"
    try:
        handler = load_handler()
    except Exception as exc:
        traceback.print_exc()
        body = error_body(exc, "")
        body["errorType"] = "Runtime.ImportModuleError"
        if not restart:
            post(f"/status/{RUNTIME_ID}/error", body)
        sys.exit(1)
    invokes: queue.Queue = queue.Queue()
    serve(invokes)
    if not restart:
        post(f"/status/{RUNTIME_ID}/ready", b"{}")
    while True:
        invoke(handler, invokes.get(), request_filter)


if __name__ == "__main__":
    main()
