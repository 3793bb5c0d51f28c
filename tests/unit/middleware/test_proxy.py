"""The middleware on a real uvicorn socket in front of the upstream: streaming is incremental, a client
that leaves cancels the engine request, and engine failures end in vLLM errors instead of hangs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from middleware import sse_relay
from middleware.app import create_app
from tests.unit.middleware.conftest import (
    FakeRewriter,
    RecordingObserver,
    Upstream,
    free_port_url,
    make_config,
    serve,
    upstream,
)

__all__ = ["upstream"]

JSON = {"content-type": "application/json"}
STREAM_BODY = b'{"model": "base", "messages": [{"role": "user", "content": "hi"}], "stream": true}'


@pytest.fixture(scope="module")
def live(upstream: tuple[Upstream, str]) -> Iterator[tuple[str, RecordingObserver]]:
    observer = RecordingObserver()
    app = create_app(make_config(upstream[1]), observer=observer, rewriter=FakeRewriter())
    with serve(app) as url:
        yield url, observer


def _wait_for(predicate: object, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.02)
    return False


def test_stream_chunks_arrive_as_the_engine_sends_them(live: tuple[str, RecordingObserver]) -> None:
    url, _ = live
    start = time.monotonic()
    arrivals: list[float] = []
    body = b""
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", url + "/v1/chat/completions", content=STREAM_BODY, headers=JSON) as resp,
    ):
        assert resp.headers["content-type"].startswith("text/event-stream")
        for chunk in resp.iter_raw():
            arrivals.append(time.monotonic() - start)
            body += chunk
    # The upstream spaces its 5 events 0.3 s apart: the first must arrive long before the last is sent.
    assert arrivals[0] < 0.5 and arrivals[-1] > 1.2
    assert body.count(b"data: ") == 6 and body.endswith(b"data: [DONE]\n\n")


def test_client_leaving_a_stream_cancels_the_engine_request(
    upstream: tuple[Upstream, str], live: tuple[str, RecordingObserver]
) -> None:
    fake, _ = upstream
    url, observer = live
    before = len(fake.state.disconnects)
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", url + "/v1/chat/completions", content=STREAM_BODY, headers=JSON) as resp,
    ):
        next(resp.iter_raw())
    assert _wait_for(lambda: len(fake.state.disconnects) > before)
    assert _wait_for(lambda: "/v1/chat/completions" in observer.disconnects)


def test_client_leaving_a_non_streaming_request_cancels_it(
    upstream: tuple[Upstream, str], live: tuple[str, RecordingObserver]
) -> None:
    fake, _ = upstream
    url, _ = live
    before = len(fake.state.disconnects)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=0.5) as client:
        client.post(url + "/v1/completions", content=b'{"prompt": "p"}', headers={**JSON, "x-test-mode": "slow"})
    # The engine would answer after 5 s; it must hear about the disconnect well before that.
    assert _wait_for(lambda: len(fake.state.disconnects) > before)
    assert time.monotonic() - started < 3


def test_load_counts_requests_in_flight(live: tuple[str, RecordingObserver]) -> None:
    url, _ = live
    results: list[int] = []

    def slow_request() -> None:
        with httpx.Client(timeout=10) as client:
            results.append(client.post(url + "/v1/completions", content=STREAM_BODY, headers=JSON).status_code)

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert _wait_for(lambda: httpx.get(url + "/load").json() == {"server_load": 1})
    thread.join(10)
    assert results == [200]
    assert httpx.get(url + "/load").json() == {"server_load": 0}


def test_engine_error_event_mid_stream_is_translated(live: tuple[str, RecordingObserver]) -> None:
    url, _ = live
    headers = {**JSON, "x-test-mode": "sse_error"}
    resp = httpx.post(url + "/v1/chat/completions", content=STREAM_BODY, headers=headers, timeout=10)
    events = [e for e in resp.content.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    error = orjson.loads(events[-2][len(b"data: ") :])
    assert error == {"error": {"message": "boom", "type": "BadRequest", "param": None, "code": 400}}


def test_engine_dying_mid_stream_ends_with_an_error_event(live: tuple[str, RecordingObserver]) -> None:
    url, observer = live
    headers = {**JSON, "x-test-mode": "sse_die"}
    resp = httpx.post(url + "/v1/chat/completions", content=STREAM_BODY, headers=headers, timeout=10)
    events = [e for e in resp.content.split(b"\n\n") if e]
    assert events[:2] == [b'data: {"choices":[{"delta":{"content":"t%d"}}]}' % i for i in range(2)]
    assert orjson.loads(events[2][len(b"data: ") :])["error"]["type"] == "InternalServerError"
    assert events[3] == b"data: [DONE]"
    assert "midstream" in observer.upstream_errors


def test_engine_dying_mid_body_is_a_502(live: tuple[str, RecordingObserver]) -> None:
    url, _ = live
    resp = httpx.post(url + "/v1/completions", content=b"{}", headers={**JSON, "x-test-mode": "die"}, timeout=10)
    assert resp.status_code == 502 and resp.json()["error"]["type"] == "Bad Gateway"


def test_engine_down_is_a_503_not_a_hang() -> None:
    observer = RecordingObserver()
    app = create_app(make_config(free_port_url()), observer=observer, rewriter=FakeRewriter())
    with serve(app) as url:
        resp = httpx.post(url + "/v1/chat/completions", content=STREAM_BODY, headers=JSON, timeout=10)
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == 503
        assert httpx.get(url + "/ping").status_code == 503
        models = httpx.get(url + "/v1/models").json()  # still answers for service discovery
        assert [card["id"] for card in models["data"]] == ["base", "alias"]
    assert observer.upstream_errors == ["connect"]


class _CountingSplice(sse_relay.Splice):
    used = 0
    paused = 0

    async def run(self) -> None:
        type(self).used += 1
        await super().run()

    def feed(self, body: bytes) -> None:
        slow = self.client_slow
        super().feed(body)
        type(self).paused += self.client_slow and not slow


def test_a_client_slower_than_the_engine_gets_every_byte_by_the_short_way(
    live: tuple[str, RecordingObserver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn's httptools server takes the short way (engine parser → client transport); a client reading
    slower than the engine pauses the engine's reads instead of buffering without bound, and nothing is lost."""
    monkeypatch.setattr(sse_relay, "Splice", _CountingSplice)
    url, _ = live
    events = 8000  # ~16 MB: more than the loopback socket buffers hold, so the middleware's writes must wait
    headers = {**JSON, "x-test-mode": f"bulk-{events}"}
    body = b""
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", url + "/v1/chat/completions", content=STREAM_BODY, headers=headers) as resp,
    ):
        for i, chunk in enumerate(resp.iter_raw(65536)):
            body += chunk
            if i < 40:
                time.sleep(0.02)  # slow at first, long enough for the middleware's transport to fill
    lines = [line for line in body.split(b"\n\n") if line]
    assert lines[-1] == b"data: [DONE]" and len(lines) == events + 1
    for i, line in enumerate(lines[:-1]):
        event = orjson.loads(line[len(b"data: ") :])
        assert (event["id"], event["model"]) == ("chatcmpl-e1", "base")
        assert event["choices"][0]["delta"]["content"].startswith(f"{i} ")
    assert _CountingSplice.used == 1 and _CountingSplice.paused >= 1


def test_uvicorns_httptools_server_is_recognised_for_the_short_way() -> None:
    """If a uvicorn upgrade renames what `client_wire` looks for, this fails instead of every stream silently
    taking the slower ASGI-message way."""
    seen: list[bool] = []

    async def app(scope: dict[str, object], receive: object, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        seen.append(sse_relay.client_wire(send) is not None)
        await send({"type": "http.response.body", "body": b"ok"})

    with serve(app) as url:
        assert httpx.get(url + "/").text == "ok"
    assert seen == [True]
