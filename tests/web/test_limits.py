"""The demo server under bad clients: huge, streamed and partial request bodies.

A real uvicorn server (the config ``contrastkit demo`` uses) runs in a thread; raw sockets play
the bad clients while an ordinary request checks that everyone else is still served.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest

from contrastkit.web.app import create_app
from contrastkit.web.limits import (
    KEEP_ALIVE_S,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    BodyLimitMiddleware,
    server_config,
)

BODY_TIMEOUT_S = 1.0  # the test server's; the demo's default is limits.BODY_TIMEOUT_S


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Yield (host, port) of a running demo server without a trained encoder."""
    import uvicorn

    app = create_app(
        tmp_path_factory.mktemp("cache"), train_encoder=False, body_timeout_s=BODY_TIMEOUT_S
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    uv = uvicorn.Server(server_config(app, log_level="error", access_log=False, lifespan="on"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started
    yield sock.getsockname()[:2]
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


def raw_request(address, head: str, body: bytes = b"") -> socket.socket:
    client = socket.create_connection(address, timeout=10)
    client.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    return client


def read_all(client: socket.socket) -> bytes:
    """Read until the server closes the connection (or 10 s pass)."""
    chunks = []
    while True:
        try:
            chunk = client.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    client.close()
    return b"".join(chunks)


def health_takes(address) -> float:
    start = time.monotonic()
    url = f"http://{address[0]}:{address[1]}/api/health"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
    return time.monotonic() - start


def post_head(length_header: str) -> str:
    return (
        f"POST /api/landscape HTTP/1.1\nHost: x\nContent-Type: application/json\n{length_header}\n"
    )


def test_a_declared_huge_body_gets_413_before_it_is_sent(server):
    start = time.monotonic()
    client = raw_request(server, post_head(f"Content-Length: {11 * MAX_BODY_BYTES}"))
    answer = read_all(client)  # the server closes without waiting for 11 MB
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"over the limit of 1000000 bytes" in answer
    assert time.monotonic() - start < 3


def test_a_streamed_body_is_counted_and_cut_at_the_limit(server):
    client = raw_request(server, post_head("Transfer-Encoding: chunked"))
    chunk = b"x" * 65536
    sent = 0
    try:
        while sent < 3 * MAX_BODY_BYTES:
            client.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed: what we want
    answer = read_all(client)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"more than" in answer


def test_a_partial_body_is_not_held_open_and_others_are_served(server):
    start = time.monotonic()
    client = raw_request(server, post_head("Content-Length: 1000"), b'{"anchor":')
    # meanwhile, other requests are answered at once
    assert health_takes(server) < 1.0
    answer = read_all(client)
    waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within 1 s" in answer
    assert BODY_TIMEOUT_S <= waited < BODY_TIMEOUT_S + 3


def test_a_bad_content_length_is_400(server):
    answer = read_all(raw_request(server, post_head("Content-Length: -5")))
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_ordinary_requests_pass_the_middleware_unchanged(server):
    body = b'{"anchor": [1, 0], "positive": [0, 1], "negatives": [[-1, 0]]}'
    head = post_head(f"Content-Length: {len(body)}") + "Connection: close\n"
    answer = read_all(raw_request(server, head, body))
    assert answer.startswith(b"HTTP/1.1 200") and b'"loss"' in answer


def test_server_config_sets_uvicorns_limits():
    config = server_config(object(), log_level="error")
    assert config.timeout_keep_alive == KEEP_ALIVE_S
    assert config.h11_max_incomplete_event_size == MAX_HEADER_BYTES
    assert config.http == "h11" and config.log_level == "error"


def test_middleware_arguments_are_checked():
    with pytest.raises(ValueError, match="timeout_s"):
        BodyLimitMiddleware(object(), timeout_s=0)
