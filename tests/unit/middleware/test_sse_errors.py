"""An SGLang SSE error event split across reads is translated exactly as if it had come in one read."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from middleware.engine_replies import translate_sse_chunk
from middleware.sse_errors import MAX_HELD_BYTES, SseErrorJoiner

STREAM = (
    b'data: {"id":"1","choices":[{"delta":{"content":"a"}}]}\n\n'
    b'data: {"error": {"message": "1 validation error:\\n  x", "type": "404", "code": 404}}\n\n'
    b'data: {"id":"1","choices":[]}\n\n'
    b"data: [DONE]\n\n"
)


def _through(chunks: list[bytes]) -> bytes:
    joiner = SseErrorJoiner()
    return b"".join(joiner.feed(c) for c in chunks) + joiner.flush()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, len(STREAM) - 1), unique=True, max_size=12))
def test_any_split_translates_like_one_read(cuts: list[int]) -> None:
    edges = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    whole = translate_sse_chunk(STREAM)
    assert whole != STREAM  # the event does get translated
    assert _through(chunks) == whole


def test_ordinary_events_are_not_held() -> None:
    joiner = SseErrorJoiner()
    event = b'data: {"id":"1","choices":[]}\n\ndata: {"id":"2"'
    assert joiner.feed(event) == event  # a partial non-error line goes out at once


def test_a_held_line_is_bounded() -> None:
    joiner = SseErrorJoiner()
    huge = b'data: {"error": "' + b"x" * (MAX_HELD_BYTES + 10)
    assert joiner.feed(huge) == huge
