"""MLflow over its REST API with urllib (no mlflow package in the function's zip).

Run: create, log params/metrics (log-batch), finish. Artifacts through the tracking server's artifact
proxy (`mlflow-artifacts:/` run URIs, the project's `mlflow server --artifacts-destination s3://...`).
Registry: create the registered model if needed, create a version of the run, tag it, move an alias.
Auth as the mlflow client does it: a bearer token or basic auth on every request (`authorization`).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

API = "/api/2.0/mlflow"
# the mlflow client's own variable names; a Secrets Manager secret uses the lower-case keys
ENV_CREDENTIALS = {
    "token": "MLFLOW_TRACKING_TOKEN",
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
}


def env_credentials(env: Mapping[str, str]) -> dict[str, str]:
    return {key: env[name] for key, name in ENV_CREDENTIALS.items() if env.get(name)}


def authorization(credentials: Mapping[str, str]) -> str | None:
    """The Authorization header of {"token"} or {"username", "password"}; None for no credentials."""
    if credentials.get("token"):
        return f"Bearer {credentials['token']}"
    username, password = credentials.get("username"), credentials.get("password")
    if bool(username) != bool(password):
        raise ValueError("MLflow basic auth needs both a username and a password")
    if not username:
        return None
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib re-sends a request's headers, Authorization too, wherever a 30x points (another host, or
    plain http): the REST API never redirects, so a redirect is answered as the error it is."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class MlflowError(RuntimeError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"MLflow {status} {code}: {message}")
        self.status, self.code = status, code


class MlflowRest:
    def __init__(
        self, tracking_uri: str, experiment: str, auth: str | None = None, timeout: float = 30.0
    ) -> None:
        self.base, self.experiment, self.timeout = tracking_uri.rstrip("/"), experiment, timeout
        self._auth = auth
        self._experiment_id: str | None = None
        self._artifact_uris: dict[str, str] = {}

    # ------------------------------------------------------------------ http
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.base + API + path
        data = None
        if body is not None and method == "GET":
            url += "?" + urllib.parse.urlencode(body)
        elif body is not None:
            data = json.dumps(body).encode()
        request = self._request(url, data, method, "application/json")
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read() or b"{}")
            except ValueError:
                error = {}
            raise MlflowError(
                exc.code, str(error.get("error_code", "")), str(error.get("message", ""))
            ) from exc
        result: dict[str, Any] = json.loads(text or b"{}")
        return result

    def _request(
        self, url: str, data: bytes | None, method: str, content_type: str
    ) -> urllib.request.Request:
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", content_type)
        if self._auth is not None:
            request.add_header("Authorization", self._auth)
        return request

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            try:
                found = self._call("GET", "/experiments/get-by-name", {"experiment_name": self.experiment})
                self._experiment_id = str(found["experiment"]["experiment_id"])
            except MlflowError as exc:
                if exc.code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                created = self._call("POST", "/experiments/create", {"name": self.experiment})
                self._experiment_id = str(created["experiment_id"])
        return self._experiment_id

    # ------------------------------------------------------------------ Tracker port
    def start_run(self, name: str, params: dict[str, str], tags: dict[str, str]) -> str:
        run = self._call(
            "POST",
            "/runs/create",
            {
                "experiment_id": self.experiment_id(),
                "run_name": name,
                "start_time": int(time.time() * 1000),
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
        )["run"]
        run_id = str(run["info"]["run_id"])
        self._artifact_uris[run_id] = str(run["info"].get("artifact_uri", ""))
        params_list = [{"key": k, "value": str(v)[:6000]} for k, v in params.items()]
        for i in range(0, len(params_list), 100):
            self._call("POST", "/runs/log-batch", {"run_id": run_id, "params": params_list[i : i + 100]})
        return run_id

    def finish_run(self, run_id: str, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        items = [{"key": k, "value": float(v), "timestamp": now, "step": 0} for k, v in metrics.items()]
        for i in range(0, len(items), 500):
            self._call("POST", "/runs/log-batch", {"run_id": run_id, "metrics": items[i : i + 500]})
        self._call("POST", "/runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": now})

    def upload_artifact(self, run_id: str, path: str, body: bytes) -> None:
        """Only through the server's artifact proxy; other artifact stores are left out (logged by caller)."""
        uri = self._artifact_uris.get(run_id, "")
        prefix = "mlflow-artifacts:"
        if not uri.startswith(prefix):
            raise MlflowError(0, "UNSUPPORTED_ARTIFACT_URI", f"cannot upload to {uri or 'unknown'}")
        location = uri[len(prefix) :].lstrip("/")
        url = f"{self.base}/api/2.0/mlflow-artifacts/artifacts/{location}/{path}"
        request = self._request(url, body, "PUT", "application/octet-stream")
        with _OPENER.open(request, timeout=self.timeout):
            pass

    def register_version(self, model_name: str, run_id: str, tags: dict[str, str]) -> str:
        try:
            self._call("POST", "/registered-models/create", {"name": model_name})
        except MlflowError as exc:
            if exc.code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = self._artifact_uris.get(run_id) or f"runs:/{run_id}"
        created = self._call(
            "POST",
            "/model-versions/create",
            {
                "name": model_name,
                "source": source,
                "run_id": run_id,
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
        )
        return str(created["model_version"]["version"])

    def set_version_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call(
                "POST",
                "/model-versions/set-tag",
                {"name": model_name, "version": version, "key": key, "value": value[:5000]},
            )

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        self._call(
            "POST", "/registered-models/alias", {"name": model_name, "alias": alias, "version": version}
        )
