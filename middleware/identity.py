"""Response identity as vLLM derives it, by exact byte edits of SGLang's answers (issue 14 item 5).

vLLM's `id` is a per-endpoint prefix (`chatcmpl-`, `cmpl-`) plus the request's base id: the `X-Request-Id`
header, else the body's `request_id`, else a random one. SGLang's is the bare `rid` (our `request_id` rule
sends the body's `request_id` as `rid`) or a random hex. vLLM's `model` echoes the client's name (an alias,
an adapter name); SGLang echoes what it was sent (the served name, `served:adapter`).

SGLang's response models put `id` first (`{"id":"...`) and serialize compactly, so both edits are exact
without parsing: the leading id value, and the first `"model":<sent literal>` (a quote inside a JSON string
is escaped, so that byte pattern cannot occur inside content). Streams are edited per whole SSE line; see
`sse_errors.SseLines`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

PREFIXES = {"/v1/chat/completions": b"chatcmpl-", "/v1/completions": b"cmpl-"}
_ID_HEAD = b'{"id":"'
SSE_HEAD = b"data: " + _ID_HEAD


@dataclass(frozen=True)
class Identity:
    prefix: bytes
    base: bytes | None  # the X-Request-Id header (JSON-escaped), replacing the engine's id; None: keep it
    sent_model: bytes | None  # `"model":<literal sent>` to find, or None when the names agree
    client_model: bytes  # `"model":<client's literal>`

    def line(self, line: bytes) -> bytes:
        """One SSE line or one whole JSON body, edited; other lines unchanged."""
        start = 6 if line.startswith(SSE_HEAD) else 0 if line.startswith(_ID_HEAD) else -1
        if start < 0:
            return line
        value_at = start + len(_ID_HEAD)
        end = _string_end(line, value_at)
        if end < 0:
            return line
        value = self.base if self.base is not None else line[value_at:end]
        out = line[:value_at] + self.prefix + value + line[end:]
        if self.sent_model is not None:
            out = out.replace(self.sent_model, self.client_model, 1)
        return out

    def head_swap(self, line: bytes) -> tuple[bytes, bytes] | None:
        """For an SSE event line: its head up to the id's closing quote, and that head as `line` edits it.

        SGLang gives every event of a stream the same id, so once one line is seen, a whole read's heads can
        be edited by one `bytes.replace` instead of a split and an edit per line (the streaming hot path)."""
        if not line.startswith(SSE_HEAD):
            return None
        value_at = len(SSE_HEAD)
        end = _string_end(line, value_at)
        if end < 0:
            return None
        value = self.base if self.base is not None else line[value_at:end]
        return line[: end + 1], line[:value_at] + self.prefix + value + b'"'

    def holds(self, partial: bytes) -> bool:
        """Whether a trailing partial line must wait for more bytes before it can be edited."""
        if not (partial.startswith(SSE_HEAD) or SSE_HEAD.startswith(partial)):
            return False
        if len(partial) <= len(SSE_HEAD) or _string_end(partial, len(SSE_HEAD)) < 0:
            return True
        return self.sent_model is not None and self.sent_model not in partial


def _string_end(data: bytes, start: int) -> int:
    """Index of the quote closing the JSON string whose text starts at `start`; -1 if not in `data`."""
    i = start
    while True:
        i = data.find(b'"', i)
        if i < 0:
            return -1
        backslashes = 0
        while data[i - 1 - backslashes] == 0x5C:  # '\\'
            backslashes += 1
        if backslashes % 2 == 0:
            return i
        i += 1


def for_request(route: str, header_id: bytes | None, client_model: object, sent_model: object) -> Identity | None:
    """The edits for one request to `route`, or None when SGLang's answer already reads as vLLM's."""
    prefix = PREFIXES.get(route)
    if prefix is None:
        return None
    base = orjson.dumps(header_id.decode("latin-1"))[1:-1] if header_id else None
    model_differs = isinstance(client_model, str) and isinstance(sent_model, str) and client_model != sent_model
    return Identity(
        prefix=prefix,
        base=base,
        sent_model=b'"model":' + orjson.dumps(sent_model) if model_differs else None,
        client_model=b'"model":' + orjson.dumps(client_model) if model_differs else b"",
    )
