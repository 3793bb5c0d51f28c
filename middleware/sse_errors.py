"""SGLang's SSE lines made vLLM's even when the engine's bytes split a line across reads.

`engine_replies.translate_sse_chunk` rewrites whole `data: {"error"...` lines, and `identity.Identity` edits
the id and model at the head of each event. A read can end inside such a line; editing each read alone would
pass it on unedited. `SseErrorJoiner` holds back only a trailing partial line that is (or could still become)
an error event, or an event head the identity edit still needs, so every other byte goes out at once.
"""

from __future__ import annotations

from middleware.engine_replies import SSE_ERROR_MARK, translate_sse_chunk
from middleware.identity import SSE_HEAD, Identity

# An error event's line is short (one JSON error object); past this a held line is passed on as it is, so a
# stream can never make the middleware buffer without bound.
MAX_HELD_BYTES = 64 * 1024


class SseErrorJoiner:
    def __init__(self, identity: Identity | None = None) -> None:
        self._held = b""
        self._identity = identity
        self._swap: tuple[bytes, bytes] | None = None  # (engine's event head, vLLM's): see Identity.head_swap
        # The last bytes sent ended inside a line: the next bytes up to a newline continue it and are no line
        # start to edit (a continuation can begin with `{"id":"` of a nested tool call).
        self._mid_line = False

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
        if not data:
            return data
        continued = b""
        if self._mid_line:
            cut = data.find(b"\n") + 1
            if cut == 0:
                return data
            continued, data = data[:cut], data[cut:]
        self._mid_line = bool(data) and not data.endswith(b"\n")
        if self._identity is not None and data:
            data = self._edit_heads(self._identity, data)
        return continued + (translate_sse_chunk(data) if SSE_ERROR_MARK in data else data)

    def _edit_heads(self, identity: Identity, data: bytes) -> bytes:
        """Exactly what editing each line with `identity.line` gives, by whole-buffer replaces when every event
        head in `data` is the one already seen (a quote inside a JSON string is escaped, so these patterns occur
        only where the edit applies; the counts prove there is no other head to edit one by one)."""
        heads = data.count(SSE_HEAD)
        swap, sent = self._swap, identity.sent_model
        if (
            swap is not None
            and data.count(swap[0]) == heads
            and (sent is None or data.count(sent) == heads)
            and not data.startswith(BARE_HEAD)
            and b"\n" + BARE_HEAD not in data
        ):
            data = data.replace(swap[0], swap[1]) if heads else data
            return data.replace(sent, identity.client_model) if sent is not None and heads else data
        lines = data.split(b"\n")
        if swap is None:
            self._swap = next(filter(None, map(identity.head_swap, lines)), None)
        return b"\n".join(map(identity.line, lines))


BARE_HEAD = SSE_HEAD[6:]  # a line that is a bare JSON body: Identity.line edits those too


def _may_be_error(line: bytes) -> bool:
    return line.startswith(SSE_ERROR_MARK) or SSE_ERROR_MARK.startswith(line)
