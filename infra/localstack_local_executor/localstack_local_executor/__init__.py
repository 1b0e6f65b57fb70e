"""LocalStack Lambda executor plugin `local`: zip Python functions as host subprocesses (no Docker)."""
