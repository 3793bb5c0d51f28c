"""Pure-ASGI layers in front of the routes: SGLang's API-key check and the `garbage` fault."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sim.errors import JSONBytesResponse

# `decide_request_auth` (srt/utils/auth.py) lets these through without a key.
OPEN_PREFIXES = ("/health", "/ready", "/metrics")
# Routes marked ADMIN_OPTIONAL: with --admin-api-key set, only that key opens them.
ADMIN_PATHS = frozenset({
    "/flush_cache", "/abort_request", "/load_lora_adapter", "/unload_lora_adapter", "/release_memory_occupation",
    "/resume_memory_occupation", "/pause_generation", "/continue_generation",
})
GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/generate"})
GARBAGE = b"\x00\xff\xfe<html>sim fault: garbage \x8f\x9d not json {{{"


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1")
            return text[7:] if text[:7].lower() == "bearer " else None
    return None


class AuthMiddleware:
    def __init__(self, app: ASGIApp, api_key: str | None, admin_api_key: str | None) -> None:
        self.app, self.api_key, self.admin_api_key = app, api_key, admin_api_key

    def _status(self, path: str, token: str | None) -> int:
        if path.startswith(OPEN_PREFIXES):
            return 200
        if self.admin_api_key and path in ADMIN_PATHS:
            if token == self.admin_api_key:
                return 200
            return 403 if token is not None and token == self.api_key else 401
        if self.api_key and (token is None or token not in (self.api_key, self.admin_api_key)):
            return 401
        return 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        status = self._status(scope["path"], _bearer(scope))
        if status == 200:
            await self.app(scope, receive, send)
            return
        body = {"error": "Unauthorized" if status == 401 else "Forbidden"}
        await JSONBytesResponse(body, status_code=status)(scope, receive, send)


class GarbageMiddleware:
    """Fault `garbage`: generation routes answer 200 with bytes that are neither JSON nor SSE."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT") and scope["path"] in GENERATION_PATHS:
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(GARBAGE)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": GARBAGE})
            return
        await self.app(scope, receive, send)
