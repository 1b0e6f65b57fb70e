"""make chaos's relay: passes traffic, and once cut fails new requests and connections already open
(a client's keep-alive pool must not carry on through an outage); restored, it passes again."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from infra.chaos.relay import Relay


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool uses it

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    relay = Relay(("127.0.0.1", server.server_address[1]))
    yield relay
    relay.close()
    server.shutdown()


def get(connection: http.client.HTTPConnection) -> bytes:
    connection.request("GET", "/")
    return connection.getresponse().read()


def test_cut_fails_open_and_new_connections_and_restore_passes_again(relay: Relay) -> None:
    kept = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5)
    assert get(kept) == b"hello"
    relay.cut()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        get(kept)  # the keep-alive connection opened before the cut
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        get(http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5))
    relay.restore()
    assert get(http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5)) == b"hello"
