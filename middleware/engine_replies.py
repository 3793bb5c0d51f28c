"""Engine (SGLang) responses → vLLM's: error bodies, SSE error events, and the few differing shapes.

Pure functions on bytes: they never raise on odd input, and return what they were given when it is not
a shape they know, so a surprise from the engine reaches the client instead of a 500 from us.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import orjson

from middleware.errors import VllmError, phrase

SSE_ERROR_MARK = b'data: {"error"'
MAX_MESSAGE_CHARS = 1000

# vLLM names error types after its exception classes; SGLang sometimes sends a bare status ("404"),
# OpenAI's "invalid_request_error", or nothing.
STATUS_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    422: "UnprocessableEntityError",
    500: "InternalServerError",
    501: "NotImplementedError",
}
FOREIGN_TYPES = {"", "invalid_request_error", "error"}

# Lines of SGLang/FastAPI validation dumps that carry no meaning for an API client.
_NOISE = re.compile(r'^\s*(File "|Traceback|Endpoint:|POST /|GET /|Failed validating|On (schema|instance)\b)')
_VALIDATION_HEADER = re.compile(r"^\s*\d+ validation errors?:?\s*$")
_VALIDATION_ITEM = re.compile(r"^\s*\{'type': ")
_LOC = re.compile(r"'loc': \(([^)]*)\)")
_MSG = re.compile(r"'msg': '([^']*)'")


def loads_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def error_type(status: int, given: object) -> str:
    if isinstance(given, str) and given not in FOREIGN_TYPES and not given.isdigit():
        return given
    return STATUS_TYPES.get(status, phrase(status))


def dotted(loc: Any) -> str | None:
    """('body', 'tools', 0, 'function') → "tools.0.function"; FastAPI's leading "body" is dropped."""
    if not isinstance(loc, (list, tuple)):
        return None
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


def _parse_validation_item(line: str) -> dict[str, Any]:
    """A pydantic error dict from its repr; the regex fallback covers inputs that are not literals."""
    try:
        item = ast.literal_eval(line.strip())
        if isinstance(item, dict):
            return item
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    loc, msg = _LOC.search(line), _MSG.search(line)
    item = {"msg": msg.group(1) if msg else "Invalid request"}
    if loc:
        item["loc"] = [p.strip().strip("'\"") for p in loc.group(1).split(",") if p.strip()]
    return item


def _first_validation_item(lines: list[str]) -> dict[str, Any] | None:
    for line in lines:
        if _VALIDATION_ITEM.match(line):
            return _parse_validation_item(line)
    return None


def short_message(message: str) -> tuple[str, str | None]:
    """One meaningful line out of a multi-line dump, plus the dotted `param` of a validation error."""
    lines = [line for line in message.splitlines() if line.strip() and not _NOISE.match(line)]
    if not lines:
        return message.strip()[:MAX_MESSAGE_CHARS], None
    # Only FastAPI/pydantic dumps ("N validation error(s):" then one repr per error) are digested; a
    # jsonschema metaschema dump also holds dict reprs, but its first line is the message.
    item = _first_validation_item(lines[1:]) if _VALIDATION_HEADER.match(lines[0]) else None
    if item is None:
        return lines[0].strip()[:MAX_MESSAGE_CHARS], None
    param = dotted(item.get("loc"))
    text = str(item.get("msg", "Invalid request"))
    ctx = item.get("ctx")
    if isinstance(ctx, dict) and isinstance(ctx.get("error"), str):
        text = f"{text} ({ctx['error']})"
    header = lines[0].strip().rstrip(":")
    detail = f"{param}: {text}" if param else text
    return f"{header}: {detail}"[:MAX_MESSAGE_CHARS], param


def _error_from_fields(status: int, fields: dict[str, Any]) -> VllmError:
    message, param = short_message(str(fields.get("message") or phrase(status)))
    given_param = fields.get("param")
    return VllmError(
        status=status,
        message=message,
        type=error_type(status, fields.get("type")),
        param=given_param if isinstance(given_param, str) else param,
    )


def _error_from_detail(status: int, detail: Any) -> VllmError:
    """FastAPI's `{"detail": ...}`: a string for HTTPException, a list for a 422 validation error."""
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        param = dotted(first.get("loc"))
        text = str(first.get("msg", "Invalid request"))
        noun = "error" if len(detail) == 1 else "errors"
        message = f"{len(detail)} validation {noun}: {param + ': ' if param else ''}{text}"
        return VllmError(400, message[:MAX_MESSAGE_CHARS], type="Bad Request", param=param)
    return VllmError(status, str(detail)[:MAX_MESSAGE_CHARS] or phrase(status), type=phrase(status))


def to_vllm_error(status: int, payload: Any) -> VllmError | None:
    """None means "already what vLLM sends": `{"error": "Unauthorized"}` and Anthropic-style bodies."""
    if isinstance(payload, dict):
        inner = payload.get("error")
        if isinstance(inner, str) or payload.get("type") == "error":
            return None
        if isinstance(inner, dict):
            return _error_from_fields(status, inner)
        if "detail" in payload:
            return _error_from_detail(status, payload["detail"])
        if "message" in payload:
            return _error_from_fields(status, payload)
    return VllmError(status, phrase(status), type=error_type(status, None))


def translate_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Any engine error response → (status, vLLM error body)."""
    payload = loads_or_none(body)
    if payload is None:
        text = body.decode("utf-8", "replace")
        message = short_message(text)[0] if text.strip() else phrase(status)
        return status, orjson.dumps(VllmError(status, message, type=error_type(status, None)).body())
    err = to_vllm_error(status, payload)
    if err is None:
        return status, body
    return err.status, orjson.dumps(err.body())


def _translate_event_line(line: bytes) -> bytes:
    payload = loads_or_none(line[len(b"data: ") :])
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return line
    code = payload["error"].get("code")
    err = to_vllm_error(code if isinstance(code, int) and 400 <= code <= 599 else 500, payload)
    return line if err is None else b"data: " + orjson.dumps(err.body())


def translate_sse_chunk(chunk: bytes) -> bytes:
    """Rewrite `data: {"error": ...}` events in one raw chunk; other lines are left byte-for-byte."""
    if SSE_ERROR_MARK not in chunk:
        return chunk
    lines = chunk.split(b"\n")
    return b"\n".join(_translate_event_line(ln) if ln.startswith(SSE_ERROR_MARK) else ln for ln in lines)


def tokenize(body: bytes) -> bytes:
    """SGLang omits `token_strs`; vLLM sends null unless `return_token_strs` (unsupported by SGLang)."""
    payload = loads_or_none(body)
    if not isinstance(payload, dict) or "token_strs" in payload:
        return body
    return orjson.dumps({**payload, "token_strs": None})


def detokenize(body: bytes) -> bytes:
    """SGLang `{"text": ...}` → vLLM `{"prompt": ...}`."""
    payload = loads_or_none(body)
    if not isinstance(payload, dict) or "text" not in payload:
        return body
    rest = {k: v for k, v in payload.items() if k != "text"}
    return orjson.dumps({"prompt": payload["text"], **rest})


def _rerank_result(item: dict[str, Any]) -> dict[str, Any]:
    document = item.get("document")
    if isinstance(document, str):
        document = {"text": document}
    return {"index": item.get("index"), "document": document, "relevance_score": item.get("score")}


def _prompt_tokens(item: dict[str, Any]) -> int:
    meta = item.get("meta_info")
    tokens = meta.get("prompt_tokens") if isinstance(meta, dict) else None
    return tokens if isinstance(tokens, int) else 0


def rerank(body: bytes, model: str, response_id: str) -> bytes:
    """SGLang's bare list `[{score, document?, index, meta_info?}]` → vLLM's RerankResponse."""
    payload = loads_or_none(body)
    if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
        return body
    return orjson.dumps(
        {
            "id": response_id,
            "model": model,
            "usage": {"total_tokens": sum(_prompt_tokens(item) for item in payload)},
            "results": [_rerank_result(item) for item in payload],
        }
    )
