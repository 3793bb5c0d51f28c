"""middleware/pd.py in-process against a small engine that records what it got: the prefill pod answers the
router at once and finishes (or cancels) SGLang's prefill in the background; the decode pod sends SGLang the
room the router carried over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from middleware.pd import decode_fields, prefill_reply
from tests.unit.middleware.conftest import RecordingObserver, _read, json_reply, make_config, middleware, run, serve

ROUTER_PARAMS = {"do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
                 "remote_block_ids": None, "remote_host": None, "remote_port": None}  # fmt: skip
CHAT = {"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "stream": False}


class Engine:
    """Answers chat at once, or (model "hang") only when the caller leaves; records bodies and departures."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.left: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = orjson.loads(await _read(receive))
        self.bodies.append(body)
        self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        if body.get("model") == "hang":
            await receive()  # http.disconnect
            self.left.append(body["bootstrap_room"])
            return
        if body.get("model") == "fail":
            return await json_reply(send, 500, {"object": "error", "message": "Prefill bootstrap failed"})
        await json_reply(send, 200, {"object": "chat.completion", "choices": []})


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[Engine, str]]:
    fake = Engine()
    with serve(fake) as url:
        yield fake, url


async def _prefill(url: str, body: dict[str, Any], observer: RecordingObserver, events: int,
                   **config: Any) -> Any:  # fmt: skip
    """POST as the router does; then wait (bounded) until the room's outcome is counted, because the background
    prefill runs on the session `middleware()` lends and closes."""
    async with middleware(make_config(url, pd_role="prefill", pd_bootstrap_port=9998, **config), observer) as client:
        resp = await client.post("/v1/chat/completions", json=body, headers={"x-request-id": "r-1"})
        async with asyncio.timeout(10):
            while len(observer.pd_rooms) < events:
                await asyncio.sleep(0.01)
        return resp


def test_prefill_answers_at_once_and_runs_the_room_in_the_background(engine: tuple[Engine, str]) -> None:
    fake, url = engine
    observer = RecordingObserver()
    body = {**CHAT, "kv_transfer_params": ROUTER_PARAMS, "stream_options": {"include_usage": True}}
    resp = run(_prefill(url, body, observer, 2))
    assert resp.status_code == 200 and resp.headers["x-request-id"] == "r-1"
    answer = resp.json()
    params = answer["kv_transfer_params"]
    assert answer["object"] == "chat.completion" and answer["model"] == "base"
    assert params["remote_port"] == 9998 and params["do_remote_prefill"] is True and params["remote_host"] is None
    sent = fake.bodies[-1]
    assert sent["bootstrap_room"] == params["bootstrap_room"]
    assert (sent["bootstrap_host"], sent["bootstrap_port"], sent["stream"]) == ("127.0.0.1", 9998, False)
    assert "kv_transfer_params" not in sent and "stream_options" not in sent
    assert fake.headers[-1]["x-request-id"] == "r-1"
    assert observer.pd_rooms == [("prefill", "started"), ("prefill", "completed")]


def test_prefill_room_without_decode_peer_is_cancelled_at_the_bound(engine: tuple[Engine, str]) -> None:
    fake, url = engine
    observer = RecordingObserver()
    body = {**CHAT, "model": "hang", "kv_transfer_params": ROUTER_PARAMS}
    resp = run(_prefill(url, body, observer, 2, pd_room_timeout_s=0.2))
    assert resp.status_code == 200
    room = resp.json()["kv_transfer_params"]["bootstrap_room"]
    assert observer.pd_rooms == [("prefill", "started"), ("prefill", "timed_out")]
    deadline = time.monotonic() + 10
    while room not in fake.left and time.monotonic() < deadline:  # the engine's thread sees the close a bit later
        time.sleep(0.01)
    assert room in fake.left  # the engine saw its caller go: SGLang aborts such a request


def test_prefill_error_from_sglang_is_counted_failed(engine: tuple[Engine, str]) -> None:
    _, url = engine
    observer = RecordingObserver()
    run(_prefill(url, {**CHAT, "model": "fail", "kv_transfer_params": ROUTER_PARAMS}, observer, 2))
    assert observer.pd_rooms == [("prefill", "started"), ("prefill", "failed")]


@pytest.mark.parametrize("params", [None, {"do_remote_decode": False}, "x"])
def test_prefill_without_orchestrated_params_is_a_400_naming_the_logic(engine: tuple[Engine, str],
                                                                       params: Any) -> None:  # fmt: skip
    _, url = engine
    body = {**CHAT, "kv_transfer_params": params} if params is not None else CHAT
    resp = run(_prefill(url, body, RecordingObserver(), 0))
    assert resp.status_code == 400
    assert "disaggregated_prefill_orchestrated" in resp.json()["error"]["message"]


def test_decode_sends_sglang_the_room_and_streams_as_usual(engine: tuple[Engine, str]) -> None:
    fake, url = engine
    observer = RecordingObserver()
    params = {**prefill_reply("/v1/chat/completions", "base", 42, 9998)["kv_transfer_params"],
              "remote_host": "10.0.0.7"}  # fmt: skip

    async def go() -> Any:
        async with middleware(make_config(url, pd_role="decode"), observer) as client:
            return await client.post("/v1/chat/completions", json={**CHAT, "kv_transfer_params": params})

    assert run(go()).status_code == 200
    sent = fake.bodies[-1]
    assert (sent["bootstrap_host"], sent["bootstrap_port"], sent["bootstrap_room"]) == ("10.0.0.7", 9998, 42)
    assert "kv_transfer_params" not in sent
    assert observer.pd_rooms == [("decode", "joined")]


@pytest.mark.parametrize(
    "params",
    [
        {"remote_host": None, "remote_port": 1, "bootstrap_room": 1},
        {"remote_host": "h", "remote_port": True, "bootstrap_room": 1},
        {"remote_host": "h", "remote_port": 70000, "bootstrap_room": 1},
        {"remote_host": "h", "remote_port": 1, "bootstrap_room": -1},
        {"remote_host": "h", "remote_port": 1, "bootstrap_room": 2**63},
        {"remote_host": "h", "remote_port": 1},
        [],
    ],
)
def test_decode_refuses_params_a_prefill_pod_did_not_answer(params: Any) -> None:
    result = decode_fields(params)
    assert not isinstance(result, dict) and result.status == 400


def test_completions_prefill_reply_has_vllms_shape() -> None:
    reply = prefill_reply("/v1/completions", "m", 7, 8998)
    assert reply["object"] == "text_completion" and reply["choices"][0]["text"] == ""
    assert reply["id"].startswith("cmpl-") and reply["kv_transfer_params"]["bootstrap_room"] == 7
