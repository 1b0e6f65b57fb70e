"""The one way the three functions read their configuration: once, at cold start, from the environment,
into a typed frozen object. Every bad or missing variable is collected and reported together in one
`ConfigError` that names the variable and the reason, so a misconfigured function fails its init at once
instead of at the first ride."""

from __future__ import annotations

import math
from collections.abc import Mapping


class ConfigError(ValueError):
    """The function's environment is incomplete or malformed."""


class EnvReader:
    """Typed readers over an environment mapping; blank counts as unset. Call `check()` when done."""

    def __init__(self, env: Mapping[str, str], function: str) -> None:
        self._env = env
        self._function = function
        self._problems: list[str] = []

    def problem(self, text: str) -> None:
        self._problems.append(text)

    def check(self) -> None:
        if self._problems:
            raise ConfigError(f"invalid {self._function} configuration: " + "; ".join(self._problems))

    def optional(self, name: str) -> str | None:
        return self._env.get(name, "").strip() or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            self.problem(f"{name} is not set")
        return value or ""

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def flag(self, name: str, default: bool) -> bool:
        """ "true" or "false" (any case)."""
        raw = (self.optional(name) or str(default)).lower()
        if raw not in ("true", "false"):
            self.problem(f"{name} must be true or false, got {raw!r}")
            return default
        return raw == "true"

    def names(self, name: str) -> tuple[str, ...]:
        """A comma-separated list."""
        return tuple(part.strip() for part in (self.optional(name) or "").split(",") if part.strip())

    def number(
        self,
        name: str,
        default: float,
        low: float = -math.inf,
        high: float = math.inf,
        *,
        open_: bool = False,
    ) -> float:
        """A finite number in [low, high], or in (low, high) when `open_`."""
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        inside = low < value < high if open_ else low <= value <= high
        if not (math.isfinite(value) and inside):
            bounds = f"({low}, {high})" if open_ else f"[{low}, {high}]"
            self.problem(f"{name} must be a number in {bounds}, got {raw!r}")
            return default
        return value

    def integer(self, name: str, default: int, low: int = 0) -> int:
        """A whole number >= low."""
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problem(f"{name} must be a whole number, got {raw!r}")
            return default
        if value < low:
            self.problem(f"{name} must be at least {low}, got {value}")
            return default
        return value


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def tracking_uri_problem(uri: str) -> str | None:
    """Why an MLflow tracking URI may not be used, or None: an http(s) server off this host must be
    reached over HTTPS, since its credentials and the models travel in every request."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme == "https" or parts.scheme not in ("http", "https"):
        return None  # HTTPS, or a local store (sqlite:, file:, a path)
    host = parts.hostname or ""
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return None
    return f"MLFLOW_TRACKING_URI {uri!r} is plain http to a remote host: use https://"
