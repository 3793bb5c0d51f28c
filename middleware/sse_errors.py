"""SGLang's SSE lines made vLLM's even when the engine's bytes split a line across reads.

`engine_replies.translate_sse_chunk` rewrites whole `data: {"error"...` lines, and `identity.Identity` edits
the id and model at the head of each event. A read can end inside such a line; editing each read alone would
pass it on unedited. `SseErrorJoiner` holds back only a trailing partial line that is (or could still become)
an error event, or an event head the identity edit still needs, so every other byte goes out at once.
"""

from __future__ import annotations

from middleware.engine_replies import SSE_ERROR_MARK, translate_sse_chunk
from middleware.identity import Identity

# An error event's line is short (one JSON error object); past this a held line is passed on as it is, so a
# stream can never make the middleware buffer without bound.
MAX_HELD_BYTES = 64 * 1024


class SseErrorJoiner:
    def __init__(self, identity: Identity | None = None) -> None:
        self._held = b""
        self._identity = identity

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send now for `chunk` (error lines translated, event heads edited)."""
        data = self._held + chunk if self._held else chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if tail and self._holds(tail) and len(tail) <= MAX_HELD_BYTES:
            self._held, data = tail, data[:cut]
        else:
            self._held = b""
        return self._edit(data)

    def flush(self) -> bytes:
        """What is still held when the stream ends."""
        held, self._held = self._held, b""
        return self._edit(held)

    def _holds(self, tail: bytes) -> bool:
        return _may_be_error(tail) or (self._identity is not None and self._identity.holds(tail))

    def _edit(self, data: bytes) -> bytes:
        if self._identity is not None and data:
            data = b"\n".join(map(self._identity.line, data.split(b"\n")))
        return translate_sse_chunk(data) if SSE_ERROR_MARK in data else data


def _may_be_error(line: bytes) -> bool:
    return line.startswith(SSE_ERROR_MARK) or SSE_ERROR_MARK.startswith(line)
