"""vLLM's API-key check as a pure ASGI middleware (vLLM `--api-key` / `VLLM_API_KEY` parity).

Only the vLLM-guarded prefixes need `Authorization: Bearer <key>`; /health, /metrics, /tokenize, /ping,
/invocations and the rest stay open, exactly like vLLM (SGLang guards everything but health and metrics,
which is why the middleware talks to SGLang with the internal engine key, never the user's: see
MiddlewareConfig.engine_secrets_file).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable

from middleware.asgi import JSON_HEADERS, ASGIApp, Receive, Scope, Send
from middleware.observer import NullObserver, Observer

PROTECTED_PREFIXES = ("/v1", "/v2", "/inference", "/cohere")
UNAUTHORIZED = b'{"error":"Unauthorized"}'


def _digest(value: bytes) -> bytes:
    # Comparing fixed-length digests keeps the comparison constant-time whatever the key lengths.
    return hashlib.sha256(value).digest()


class ApiKeyAuth:
    def __init__(
        self,
        app: ASGIApp,
        keys: Iterable[str],
        observer: Observer | None = None,
        route_of: Callable[[str], str] = lambda path: "unauthorized",
    ) -> None:
        self.app = app
        self.digests = tuple(_digest(key.encode()) for key in keys)
        self.observer = observer or NullObserver()
        self.route_of = route_of

    def needs_key(self, scope: Scope) -> bool:
        if scope["type"] not in ("http", "websocket") or scope.get("method") == "OPTIONS":
            return False
        return bool(self.digests) and str(scope["path"]).startswith(PROTECTED_PREFIXES)

    def authorized(self, scope: Scope) -> bool:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = bytes(header).partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        offered = _digest(token)
        # No short-circuit: every key is compared so timing does not reveal which one matched.
        matches = [hmac.compare_digest(offered, digest) for digest in self.digests]
        return any(matches)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.needs_key(scope) or self.authorized(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = [*JSON_HEADERS, (b"content-length", str(len(UNAUTHORIZED)).encode())]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": UNAUTHORIZED})
        self.observer.count_request(self.route_of(str(scope["path"])), 401)
