"""A keep-alive connection the engine closed while it sat idle is not written on: the request goes on a new
connection, exactly once (issue 14 item 6). Before: the POST met the closed socket and the client got a 502."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from middleware.engine.pool import EnginePool

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


@pytest.fixture
def closing_engine() -> Iterator[tuple[int, list[bytes]]]:
    """Answers each connection's first request with keep-alive, then closes that connection 20 ms later."""
    seen: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                data = b""
                while b"\r\n\r\n" not in data or not data.endswith(b"{}"):
                    data += conn.recv(65536)
                seen.append(data)
                conn.sendall(ANSWER)
                time.sleep(0.02)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], seen
    stop.set()
    thread.join(5)
    listener.close()


def test_post_on_a_connection_closed_while_idle_goes_on_a_new_one(closing_engine: tuple[int, list[bytes]]) -> None:
    port, seen = closing_engine

    async def go() -> list[int]:
        pool = EnginePool("127.0.0.1", port, keepalive=30, connect_timeout=5)
        head = b"POST /v1/completions HTTP/1.1\r\nhost: engine\r\ncontent-type: application/json\r\n"
        statuses = []
        for _ in range(2):
            resp = await pool.request(head, b"{}")
            await resp.read()
            resp.release()
            statuses.append(resp.status)
            # Block the loop: the engine's FIN reaches the socket but the loop has not seen it yet, the
            # moment a busy middleware reuses a connection.
            time.sleep(0.1)
        pool.close()
        return statuses

    assert asyncio.run(go()) == [200, 200]
    assert len(seen) == 2  # each request reached the engine once, never twice
