"""Request parsing and error bodies in SGLang's shapes (sglang.md §3).

- OpenAI routes: flat `{"object":"error","message","type","param":null,"code"}`, HTTP status = code.
- Request validation: 400 (not FastAPI's 422) in the same flat shape with type "Bad Request" and the message
  `"{str(exc)} {exc.errors()}"`. FastAPI's str(exc) names the endpoint's Python file; we name SGLang's, so the
  middleware meets the same multi-line dump it will meet in production.
- Native routes: `{"error": {"message": ...}}`.
"""

from __future__ import annotations

import email.message
import json
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from fastapi import Request, Response
from fastapi.exceptions import EndpointContext, RequestValidationError
from pydantic import BaseModel, ValidationError

SGLANG_HTTP_SERVER = "/usr/local/lib/python3.12/dist-packages/sglang/srt/entrypoints/http_server.py"
UNSUPPORTED_MEDIA = "Unsupported Media Type: Only 'application/json' is allowed"

_M = TypeVar("_M", bound=BaseModel)


class JSONBytesResponse(Response):
    """orjson-rendered JSON (FastAPI's ORJSONResponse is deprecated and warns)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class SimError(Exception):
    """An OpenAI-route failure, rendered in SGLang's flat error shape."""

    def __init__(self, message: str, err_type: str = "BadRequestError", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.err_type, self.status = message, err_type, status


class NativeError(Exception):
    """A native-route failure, rendered as `{"error": {"message": ...}}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def flat_error(message: str, err_type: str = "BadRequestError", status: int = 400) -> JSONBytesResponse:
    body = {"object": "error", "message": message, "type": err_type, "param": None, "code": status}
    return JSONBytesResponse(body, status_code=status)


async def sim_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimError)
    return flat_error(exc.message, exc.err_type, exc.status)


async def native_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, NativeError)
    return JSONBytesResponse({"error": {"message": exc.message}}, status_code=exc.status)


async def validation_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    exc_str, errors_str = str(exc), str(exc.errors())
    message = f"{exc_str} {errors_str}" if errors_str and errors_str != exc_str else exc_str
    return flat_error(message, "Bad Request", 400)


@dataclass(frozen=True)
class Endpoint:
    """Where SGLang's handler for a route lives; only used to make validation messages look like SGLang's."""

    function: str
    line: int
    json_only: bool = True  # SGLang's `validate_json_request` dependency (415-ish check, answered as 400)

    def context(self, request: Request) -> EndpointContext:
        return EndpointContext(function=self.function, line=self.line, file=SGLANG_HTTP_SERVER,
                               path=f"{request.method} {request.url.path}")


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def read_json(request: Request, endpoint: Endpoint) -> Any:
    """The JSON body, or the RequestValidationError FastAPI/SGLang would raise. Missing body -> None."""
    content_type = request.headers.get("content-type")
    ctx = endpoint.context(request)
    if endpoint.json_only and (content_type or "").split(";")[0].strip().lower() != "application/json":
        # SGLang raises this from a dependency, without endpoint context.
        raise RequestValidationError([{"loc": ["header", "content-type"], "msg": UNSUPPORTED_MEDIA,
                                       "type": "value_error"}])
    raw = await request.body()
    if not raw:
        return None
    if content_type and not _is_json(content_type):
        return raw.decode("utf-8", "replace")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error", "input": {},
              "ctx": {"error": e.msg}}],
            body=e.doc, endpoint_ctx=ctx,
        ) from e


async def parse_body(request: Request, model: type[_M], endpoint: Endpoint) -> _M:
    body = await read_json(request, endpoint)
    ctx = endpoint.context(request)
    if body is None:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}],
                                     endpoint_ctx=ctx)
    try:
        return model.model_validate(body)
    except ValidationError as e:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
        raise RequestValidationError(errors, body=body, endpoint_ctx=ctx) from None
