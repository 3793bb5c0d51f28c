"""vLLM's error body: `{"error": {"message", "type", "param", "code"}}` (vLLM >= 0.10, ErrorResponse)."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True)
class VllmError:
    status: int
    message: str
    type: str = "BadRequestError"
    param: str | None = None

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.status}}


def phrase(status: int) -> str:
    """The HTTP reason phrase: vLLM's HTTPException handler uses it as the error `type`."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def http_error(status: int, message: str | None = None, param: str | None = None) -> VllmError:
    """An error shaped like vLLM's answer to a Starlette HTTPException (404, 405, 413, 502, ...)."""
    return VllmError(status, message or phrase(status), type=phrase(status), param=param)


def bad_request(message: str, param: str | None = None) -> VllmError:
    """vLLM's RequestValidationError answer: 400 with type "Bad Request"."""
    return VllmError(400, message, type="Bad Request", param=param)


def legacy_compatible_body(err: VllmError) -> dict[str, Any]:
    """The nested vLLM error plus the same fields at the top level (the pre-0.10 flat shape).

    The production-stack LoRA controller still reads top-level `type`/`message` to recognise "already
    loaded", while current clients read `error.*`; one body satisfies both.
    """
    body = err.body()
    return {**body, "object": "error", **body["error"]}
