"""The connection to the engine (SGLang): a lean HTTP/1.1 pool for client requests, aiohttp for our own calls.

Client requests (the hot path) go over `EnginePool` (middleware/engine/pool.py): keep-alive connections
on asyncio protocols with httptools' parser (the one uvicorn uses), no connection cap (SGLang's own queue
is the limit). Measured with bench/run.py on the 2-core bench box: aiohttp's per-request machinery
(request/response objects, header multidicts, URL parsing, timers, connector) cost about 0.6 ms of CPU
per proxied request, more than half of the middleware's total; the pool costs a small fraction of that.
docs/benchmarks.md has the numbers.

The middleware's own small calls (`Engine.call`: /ping, /v1/models, LoRA and sleep admin) keep one aiohttp
session. aiohttp rather than httpx there: on this box a client-only benchmark against a trivial uvicorn
upstream gave httpx 0.28 230-254 req/s at concurrency 64 and aiohttp 3.14 1822-2235 req/s (httpx's pool
scan and anyio locks, encode/httpx#3215).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from middleware.config import MiddlewareConfig
from middleware.engine.pool import EnginePool, EngineUnreachable
from middleware.errors import VllmError, http_error

# Below SGLang's 5 s uvicorn keep-alive, so we never reuse a socket the engine is about to close.
KEEPALIVE_EXPIRY_S = 4.0
CONNECT_TIMEOUT_S = 5.0
# Local calls the middleware makes on its own behalf (probes, model list); generation calls have no
# read timeout at all, because a long non-streaming completion sends nothing until it is done.
PROBE_TIMEOUT_S = 5.0
ADMIN_TIMEOUT_S = 600.0

ENGINE_UNREACHABLE = http_error(503, "The inference engine is not reachable (it may be starting or restarting).")
ENGINE_BROKE_OFF = http_error(502, "The inference engine closed the connection before answering.")
ENGINE_GARBLED = http_error(502, "The inference engine sent a malformed response.")


class UpstreamError(Exception):
    """The engine could not be reached or broke the exchange; carries what to tell the client."""

    def __init__(self, kind: str, error: VllmError) -> None:
        super().__init__(error.message)
        self.kind = kind
        self.error = error


def classify(exc: BaseException) -> UpstreamError:
    """Map a pool/aiohttp/OS failure to (observer kind, client error)."""
    if isinstance(exc, (EngineUnreachable, aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return UpstreamError("connect", ENGINE_UNREACHABLE)
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamError("timeout", http_error(504, "The inference engine did not answer in time."))
    return UpstreamError("protocol", ENGINE_BROKE_OFF)


UPSTREAM_FAILURES = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def new_session() -> aiohttp.ClientSession:
    """Must run inside the event loop. No connection cap: the engine's own queue is the limit."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=KEEPALIVE_EXPIRY_S)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=None),
        # We hand the engine's bytes on untouched, so they must arrive untouched.
        auto_decompress=False,
        # An HTTP_PROXY in a pod's environment must never capture loopback traffic.
        trust_env=False,
        skip_auto_headers=("User-Agent",),
    )


@dataclass
class Reply:
    status: int
    body: bytes


class Engine:
    """Owns (or borrows) the session and knows the engine's address and credentials."""

    def __init__(self, config: MiddlewareConfig, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = config.engine_url.rstrip("/")
        # The internal key, never the user's: SGLang is started with it (shim/pod/engine_launch.py).
        key = config.engine_key()
        self.auth = f"Bearer {key}" if key else None
        self._session = session
        self._owned = session is None
        parts = urlsplit(self.base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"engine_url must be http://HOST:PORT (SGLang on loopback), not {config.engine_url!r}")
        self.host_header = parts.netloc.encode("idna")
        # Prepended to every client request's target, as `url()` prepends base_url (empty from the shim).
        self.path_prefix = parts.path.encode("ascii")
        self._address = (parts.hostname, parts.port or 80)
        self._pool: EnginePool | None = None

    @property
    def pool(self) -> EnginePool:
        """The connection pool client requests use; created on first use, in the running loop."""
        if self._pool is None:
            host, port = self._address
            self._pool = EnginePool(host, port, keepalive=KEEPALIVE_EXPIRY_S, connect_timeout=CONNECT_TIMEOUT_S)
        return self._pool

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created on first use because an aiohttp session belongs to the running loop.
        if self._session is None:
            self._session = new_session()
        return self._session

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, path: str, query: bytes = b"") -> str:
        return f"{self.base_url}{path}?{query.decode('latin-1')}" if query else f"{self.base_url}{path}"

    async def call(self, method: str, path: str, json: object = None, timeout: float = PROBE_TIMEOUT_S) -> Reply:
        """One small request of the middleware's own (not a client's); raises UpstreamError."""
        headers = {"Authorization": self.auth} if self.auth else {}
        try:
            async with self.session.request(
                method, self.url(path), json=json, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                return Reply(resp.status, await resp.read())
        except UPSTREAM_FAILURES as exc:
            raise classify(exc) from exc
