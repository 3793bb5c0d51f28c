"""Small pure-ASGI building blocks: the per-request context, body reading and response sending."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from middleware.errors import VllmError, http_error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
TEXT_HEADERS: Headers = [(b"content-type", b"text/plain; charset=utf-8")]


class ClientGone(Exception):
    """The client sent `http.disconnect` before we finished reading its request."""


class BodyTooLarge(Exception):
    """The request body is over `max_body_bytes`."""


@dataclass
class Call:
    """Everything a handler needs about one request; lives only for that request."""

    scope: Scope
    receive: Receive
    send: Send
    route: str
    # Echoed on the response and passed to the engine; None when the client sent none and
    # --enable-request-id-headers is off.
    request_id: bytes | None = None
    status: int = 0
    # Set just before the last body message, so a disconnect seen afterwards is not counted as one.
    finished: bool = False
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def query(self) -> bytes:
        return bytes(self.scope.get("query_string", b""))

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.scope["headers"]:
            if key == name:
                return bytes(value)
        return None

    async def read_body(self, limit: int) -> bytes:
        """The whole request body; raises BodyTooLarge past `limit` bytes, ClientGone on disconnect."""
        declared = self.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def respond(self, status: int, body: bytes, headers: Headers | None = None) -> None:
        """Send a complete response in two messages."""
        head = list(headers if headers is not None else JSON_HEADERS)
        head.append((b"content-length", str(len(body)).encode()))
        await self.send({"type": "http.response.start", "status": status, "headers": head})
        self.finished = True
        await self.send({"type": "http.response.body", "body": body})

    async def respond_json(self, status: int, payload: Any) -> None:
        await self.respond(status, orjson.dumps(payload))

    async def respond_error(self, err: VllmError) -> None:
        await self.respond_json(err.status, err.body())


def parse_query(query: bytes) -> dict[str, list[str]]:
    """`a=1&b=2&b=3` → {"a": ["1"], "b": ["2", "3"]} (repeated keys kept, as vLLM's `tags=` needs)."""
    from urllib.parse import parse_qs

    return parse_qs(query.decode("latin-1"), keep_blank_values=True)


async def wait_for_disconnect(receive: Receive) -> None:
    """Return when the client goes away (any leftover request-body messages are ignored)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


NOT_FOUND = http_error(404)
METHOD_NOT_ALLOWED = http_error(405)
