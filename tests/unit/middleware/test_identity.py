"""vLLM's response id and model, by byte edits of SGLang's answers: whole bodies and SSE streams split anywhere."""

from __future__ import annotations

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from middleware.engine_replies import SSE_ERROR_MARK, translate_sse_chunk
from middleware.identity import Identity, for_request
from middleware.sse_errors import SseErrorJoiner

CHAT = "/v1/chat/completions"


def _event(rid: str, model: str, content: str) -> bytes:
    chunk = {"id": rid, "object": "chat.completion.chunk", "created": 1, "model": model,
             "choices": [{"index": 0, "delta": {"content": content, "tool_calls": [{"id": "call_1"}]}}]}  # fmt: skip
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


STREAM = (
    _event("abc", "base:lora-a", 'say "model":"base:lora-a"')
    + _event("abc", "base:lora-a", "x")
    + b'data: {"error": {"message": "boom", "type": "500", "code": 500}}\n\n'
    + b"data: [DONE]\n\n"
)


def _ids_and_models(stream: bytes) -> list[tuple[str, str]]:
    out = []
    for line in stream.split(b"\n"):
        if line.startswith(b'data: {"id"'):
            event = orjson.loads(line[6:])
            out.append((event["id"], event["model"]))
    return out


def test_whole_body_id_prefix_and_model_echo() -> None:
    identity = for_request(CHAT, None, "lora-a", "base:lora-a")
    assert identity is not None
    body = orjson.dumps({"id": "abc", "object": "chat.completion", "model": "base:lora-a", "choices": []})
    assert orjson.loads(identity.line(body)) == {
        "id": "chatcmpl-abc", "object": "chat.completion", "model": "lora-a", "choices": []
    }  # fmt: skip


def test_x_request_id_header_wins_and_is_json_escaped() -> None:
    identity = for_request("/v1/completions", b'h"1', "base", "base")
    assert identity is not None and identity.sent_model is None
    body = orjson.dumps({"id": "abc", "model": "base"})
    assert orjson.loads(identity.line(body))["id"] == 'cmpl-h"1'


def test_other_routes_are_left_alone() -> None:
    assert for_request("/v1/embeddings", None, "a", "b") is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, len(STREAM) - 1), unique=True, max_size=12))
def test_any_split_of_a_stream_is_edited_like_one_read(cuts: list[int]) -> None:
    edges = [0, *sorted(cuts), len(STREAM)]
    joiner = SseErrorJoiner(for_request(CHAT, None, "lora-a", "base:lora-a"))
    out = b"".join(joiner.feed(STREAM[a:b]) for a, b in zip(edges, edges[1:], strict=False)) + joiner.flush()
    assert _ids_and_models(out) == [("chatcmpl-abc", "lora-a")] * 2
    assert b'say \\"model\\":\\"base:lora-a\\"' in out  # content is never edited
    assert b'"id":"call_1"' in out  # nor nested ids
    assert b'"type":"InternalServerError"' in out  # and the error event is still translated


def _reference(identity: Identity, stream: bytes) -> bytes:
    """The edit defined line by line on the whole stream (what the fast whole-read replaces must equal)."""
    edited = b"\n".join(map(identity.line, stream.split(b"\n")))
    return translate_sse_chunk(edited) if SSE_ERROR_MARK in edited else edited


_EVENTS = st.sampled_from(
    [
        _event("abc", "base:lora-a", "x"),
        _event("abc", "base:lora-a", 'say "model":"base:lora-a" and data: {"id":"abc"'),
        _event("abd", "base:lora-a", "another choice's id"),
        _event("abc", "other", "a model name we did not send"),
        _event('a"bc', "base:lora-a", "an id with a quote"),
        b'data: {"error": {"message": "boom", "type": "500", "code": 500}}\n\n',
        b'data: {"id":"abc","object":"chat.completion.chunk","choices":[]}\n\n',  # no model at all
        b": keep-alive comment\n\n",
    ]
)


@settings(max_examples=400, deadline=None)
@example(  # a read ending inside an event whose rest starts with a nested tool call's `{"id":"`
    [b'data: {"error": {"message": "boom", "type": "500", "code": 500}}\n\n', _event("abc", "base:lora-a", "x")],
    [210],
    (None, "lora-a", "base:lora-a"),
)
@given(
    st.lists(_EVENTS, min_size=1, max_size=8),
    st.lists(st.integers(1, 10_000), max_size=6),
    st.sampled_from([(None, "lora-a", "base:lora-a"), (b"req-7", "lora-a", "base:lora-a"), (None, "base", "base")]),
)
def test_whole_read_edits_equal_line_by_line_edits(
    events: list[bytes], cuts: list[int], names: tuple[bytes | None, str, str]
) -> None:
    stream = b"".join(events) + b"data: [DONE]\n\n"
    identity = for_request(CHAT, *names)
    assert identity is not None
    edges = sorted({0, len(stream), *(c % len(stream) for c in cuts)})
    joiner = SseErrorJoiner(identity)
    out = b"".join(joiner.feed(stream[a:b]) for a, b in zip(edges, edges[1:], strict=False)) + joiner.flush()
    assert out == _reference(identity, stream)
