"""The `local` RuntimeExecutor: one host subprocess per LocalStack execution environment.

LocalStack (lambda_/invocation/) drives every executor the same way:
  prepare_version(fv)  once per function version  -> we unzip the code and check the interpreter
  start(env_vars)      per execution environment  -> we spawn bootstrap.py and wait for its
                                                     POST {runtime endpoint}/status/{id}/ready
  invoke(payload)      per invocation             -> we POST the payload to the bootstrap's /invoke;
                                                     it posts /invocations/{id}/logs and then
                                                     /invocations/{id}/response or /error back
  stop()                                          -> we kill the process group
The posts land in LocalStack's ExecutorEndpoint (the same routes the Docker runtime-init uses),
which resolves the invocation future and hands the logs to CloudWatch Logs.

The function timeout is enforced here: past it the process is killed, the invocation answers
`Sandbox.Timedout`, and the next invocation starts a fresh process (like a Lambda reset).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import requests
from localstack import config
from localstack.aws.connect import connect_to
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from localstack.utils.net import get_free_tcp_port

from localstack_local_executor.emf import metric_requests

LOG = logging.getLogger(__name__)
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
HOST = "127.0.0.1"
# host environment passed through to the function (everything else comes from LocalStack / the function)
PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT")
STARTUP_TIMEOUT_S = float(os.environ.get("LAMBDA_LOCAL_STARTUP_TIMEOUT", "60"))
METRICS_PUBLISHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-executor-emf")


def runtime_python(runtime: str) -> str:
    """Interpreter for a Lambda runtime such as `python3.12`.

    LAMBDA_LOCAL_PYTHON3_12=/path/to/python wins (infra/ points it at a venv holding boto3, like the
    Lambda runtime); then `python3.12` on PATH; then pyenv's versions folder.
    """
    if not runtime or not runtime.startswith("python"):
        raise LambdaRuntimeException(f"local executor runs python runtimes only, not {runtime!r}")
    override = os.environ.get("LAMBDA_LOCAL_" + runtime.upper().replace(".", "_"))
    if override:
        return override
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(f"{pyenv_root}/versions/{runtime[6:]}.*/bin/{runtime}"), reverse=True)
    found = candidates[0] if candidates else shutil.which(runtime)
    if not found:
        raise LambdaRuntimeException(f"no {runtime} interpreter found (set LAMBDA_LOCAL_{runtime.upper()})")
    return found


class LocalRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.port = get_free_tcp_port()
        self.executor_endpoint = ExecutorEndpoint(self.id, container_address=HOST, container_port=self.port)
        self.process: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        self.log_path = Path(tempfile.gettempdir()) / "lambda-local" / f"{self.id}.log"  # cleaned by `down`

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        self.executor_endpoint.start()
        code_dir = str(self.function_version.config.code.get_unzipped_code_location())
        env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
        env.update({k: str(v) for k, v in env_vars.items()})  # Lambda env + the function's own variables
        env.update(
            LAMBDA_TASK_ROOT=code_dir,
            LAMBDA_RUNTIME_DIR=str(BOOTSTRAP.parent),
            LOCAL_EXECUTOR_PORT=str(self.port),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        # the SDK inside the function talks to LocalStack; a local run has no X-Ray daemon
        env.setdefault("AWS_ENDPOINT_URL", f"http://{HOST}:{config.GATEWAY_LISTEN[0].port}")
        env.setdefault("AWS_ACCESS_KEY_ID", "test")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        self.env = env
        self._spawn(restart=False)
        self.executor_endpoint.wait_for_startup()

    def _spawn(self, restart: bool) -> None:
        python = runtime_python(self.function_version.config.runtime)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(self.env, LOCAL_EXECUTOR_RESTART="1" if restart else "0")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [python, "-s", str(BOOTSTRAP)],
                cwd=env["LAMBDA_TASK_ROOT"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills the handler's children too
            )
        LOG.debug("local executor %s: pid %s, %s", self.id, self.process.pid, python)
        if restart:  # no second /status/ready: wait until the runtime loop listens again
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    requests.get(f"http://{HOST}:{self.port}/ping", timeout=1, proxies={"http": ""})
                    return
                except requests.ConnectionError:
                    time.sleep(0.05)
            raise LambdaRuntimeException(f"runtime of {self.id} did not come back after a reset")

    def _kill(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def stop(self) -> None:
        self._kill()
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:  # same tolerance as the Docker executor
            LOG.debug("error stopping executor endpoint %s: %s", self.id, e)

    # --- invocation --------------------------------------------------------------------------------
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        result = self._invoke(payload)
        if result.logs:
            METRICS_PUBLISHER.submit(self._publish_metrics, result.logs)
        return result

    def _publish_metrics(self, logs: str) -> None:
        """The invocation's EMF lines as CloudWatch metrics, as CloudWatch Logs does on AWS (emf.py)."""
        requests_ = metric_requests(logs)
        if not requests_:
            return
        version = self.function_version.id
        cloudwatch = connect_to(aws_access_key_id=version.account, region_name=version.region).cloudwatch
        for request in requests_:
            try:
                cloudwatch.put_metric_data(**request)
            except Exception as e:  # a metric lost is logged, never an invocation failed
                LOG.warning("local executor %s: EMF metrics not put: %s", self.id, e)

    def _invoke(self, payload: dict[str, str]) -> InvocationResult:
        if self.process is None or self.process.poll() is not None:
            self._spawn(restart=True)  # reset after a timeout or a crash
        request_id = payload["invoke-id"]
        timeout_s = float(self.function_version.config.timeout)
        endpoint = self.executor_endpoint
        future: Future[InvocationResult] = Future()
        endpoint.invocation_future = future
        endpoint.logs = None
        payload = dict(payload, **{"deadline-ms": int((time.time() + timeout_s) * 1000)})
        response = requests.post(
            f"http://{HOST}:{self.port}/invoke", json=payload, proxies={"http": ""}, timeout=10
        )
        response.raise_for_status()
        deadline = time.monotonic() + timeout_s + 0.5  # the handler itself sees the exact deadline
        process = self.process
        assert process is not None
        while not future.done():
            if process.poll() is not None:
                return self._failure(
                    request_id,
                    "Runtime.ExitError",
                    f"Runtime exited with error: exit status {process.returncode}",
                )
            if time.monotonic() > deadline:
                self._kill()
                return self._failure(
                    request_id, "Sandbox.Timedout", f"Task timed out after {timeout_s:.2f} seconds"
                )
            try:
                return future.result(timeout=0.1)
            except TimeoutError:
                continue
        return future.result()

    def _failure(self, request_id: str, error_type: str, message: str) -> InvocationResult:
        LOG.info("local executor %s: %s: %s", self.id, error_type, message)
        error = {"errorMessage": f"RequestId: {request_id} Error: {message}", "errorType": error_type}
        logs = (self.executor_endpoint.logs or "") + f"{message}\nEND RequestId: {request_id}\n"
        return InvocationResult(request_id, json.dumps(error).encode(), is_error=True, logs=logs)

    # --- addresses -----------------------------------------------------------------------------------
    def get_address(self) -> str:
        return HOST

    def get_endpoint_from_executor(self) -> str:
        return HOST

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{HOST}:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    def get_logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return "no logs"

    # --- per version ---------------------------------------------------------------------------------
    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        runtime_python(function_version.config.runtime)  # fail early (function state Failed) if missing
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()  # unzip to a folder on disk

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # LocalStack owns the unzipped code folder

    @classmethod
    def validate_environment(cls) -> bool:
        LOG.info("Lambda executor `local`: functions run as host processes (%s)", sys.platform)
        return True
