"""In-memory doubles of the loop's ports, for tests and in-process runs."""

from __future__ import annotations

import hashlib

from lambda_retrain.ports import Tagged


class MemoryStore:
    """A bucket in a dict; ETags as S3 computes them for a single-part upload (MD5 of the body)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def get_tagged(self, key: str) -> Tagged | None:
        body = self.objects.get(key)
        return None if body is None else Tagged(body, self.etag(key))

    def etag(self, key: str) -> str:
        return f'"{hashlib.md5(self.objects[key]).hexdigest()}"'  # S3's ETag, not security

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = body

    def put_if_absent(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        if key in self.objects:
            return None
        self.objects[key] = body
        return self.etag(key)

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        if key not in self.objects or self.etag(key) != etag:
            return None
        self.objects[key] = body
        return self.etag(key)

    def delete_if_match(self, key: str, etag: str) -> bool:
        if key not in self.objects or self.etag(key) != etag:
            return False
        del self.objects[key]
        return True

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


class StaticAlarms:
    """The alarms' states as CloudWatch would describe them; unknown names are absent, as there."""

    def __init__(self, states: dict[str, str] | None = None) -> None:
        self.current = dict(states or {})

    def states(self, names: tuple[str, ...]) -> dict[str, str]:
        return {name: self.current[name] for name in names if name in self.current}
