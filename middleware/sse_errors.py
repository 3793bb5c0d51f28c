"""SGLang's SSE error events, translated to vLLM's even when the engine's bytes split one across reads.

`engine_replies.translate_sse_chunk` rewrites whole `data: {"error"...` lines. A read can end inside such a
line; translating each read alone would pass the event on untranslated. `SseErrorJoiner` holds back only a
trailing partial line that is (or could still become) an error event, so every other byte goes out at once.
"""

from __future__ import annotations

from middleware.engine_replies import SSE_ERROR_MARK, translate_sse_chunk

# An error event's line is short (one JSON error object); past this a held line is passed on as it is, so a
# stream can never make the middleware buffer without bound.
MAX_HELD_BYTES = 64 * 1024


class SseErrorJoiner:
    def __init__(self) -> None:
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send now for `chunk` (error lines translated)."""
        data = self._held + chunk if self._held else chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if tail and _may_be_error(tail) and len(tail) <= MAX_HELD_BYTES:
            self._held, data = tail, data[:cut]
        else:
            self._held = b""
        return translate_sse_chunk(data) if SSE_ERROR_MARK in data else data

    def flush(self) -> bytes:
        """What is still held when the stream ends."""
        held, self._held = self._held, b""
        return translate_sse_chunk(held) if SSE_ERROR_MARK in held else held


def _may_be_error(line: bytes) -> bool:
    return line.startswith(SSE_ERROR_MARK) or SSE_ERROR_MARK.startswith(line)
