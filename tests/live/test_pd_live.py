"""A P/D pair under production-stack's `disaggregated_prefill_orchestrated` routing logic: two real stacks (a
producer pod, a consumer pod), each supervisord + haproxy + middleware + the simulated SGLang in
--disaggregation-mode, driven as the router's `route_orchestrated_disaggregated_request` drives them.

What the router sends (vllm-project/production-stack a6c01db, src/vllm_router/services/request_service/
request.py): to the prefill URL the client's body with `max_tokens: 1` (and `max_completion_tokens: 1` when
present), `stream: false`, no `stream_options`, and the `kv_transfer_params` below; headers Content-Type and
X-Request-Id only (no Authorization). It awaits the JSON answer, takes its `kv_transfer_params`, sets
`remote_host` to the prefill URL's host, and sends the decode URL the client's original body plus those params
with the same X-Request-Id, relaying the decode answer.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live.stack import Stack, free_port_block, start_stack

ROUTER_PREFILL_PARAMS = {"do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
                         "remote_block_ids": None, "remote_host": None, "remote_port": None}  # fmt: skip
SGLANG_TIMEOUT_S = "4"  # SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT and _WAITING_TIMEOUT, read by both pods
CHAT = {"model": "test-model", "messages": [{"role": "user", "content": "Say something about rooms."}],
        "max_tokens": 12}  # fmt: skip


def _start(tmp: Path, name: str, port: int, kv_role: str, extra_args: str = "") -> Stack:
    """A pod as the chart starts one of a P/D pair: vLLM's --kv-transfer-config names the role."""
    (tmp / name).mkdir()
    kv = json.dumps({"kv_connector": "NixlConnector", "kv_role": kv_role})
    return start_stack(tmp / name, "--max-model-len", "4096", "--kv-transfer-config", kv, port=port,
                       SGLANG_EXTRA_ARGS=extra_args, SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT=SGLANG_TIMEOUT_S,
                       SGLANG_DISAGGREGATION_WAITING_TIMEOUT=SGLANG_TIMEOUT_S)  # fmt: skip


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Stack]]:
    tmp = tmp_path_factory.mktemp("pd")
    prefill_port = free_port_block(5)
    bootstrap = prefill_port + 4  # beside the pod's four ports (public, engine, middleware, engine bootstrap)
    # Not vLLM's 8998: other stacks may run on this machine. The shim reads the port from the final arguments.
    prefill = _start(tmp, "prefill", prefill_port, "kv_producer", f"--disaggregation-bootstrap-port {bootstrap}")
    decode = _start(tmp, "decode", free_port_block(4), "kv_consumer")
    try:
        prefill.wait_health(200, timeout=60)
        decode.wait_health(200, timeout=60)
        yield prefill, decode
    finally:
        prefill.stop()
        decode.stop()


def route_orchestrated(prefill: Stack, decode: Stack, body: dict[str, Any], client: httpx.Client | None = None
                       ) -> tuple[dict[str, Any], float, httpx.Response]:  # fmt: skip
    """The router's two calls; returns (prefill answer, seconds the prefill call took, decode response). The
    router keeps one aiohttp session: pass `client` to time the calls over kept-alive connections too."""
    if client is None:
        with httpx.Client(timeout=600) as own:
            return route_orchestrated(prefill, decode, body, own)
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
    prefill_body = {**body, "max_tokens": 1, "kv_transfer_params": dict(ROUTER_PREFILL_PARAMS), "stream": False}
    if "max_completion_tokens" in prefill_body:
        prefill_body["max_completion_tokens"] = 1
    prefill_body.pop("stream_options", None)
    started = time.perf_counter()
    answer = client.post(prefill.url + "/v1/chat/completions", json=prefill_body, headers=headers)
    took = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] == request_id
    data = answer.json()
    params = data["kv_transfer_params"]
    params["remote_host"] = prefill.url.split("://")[1].split(":")[0]
    decode_body = {**body, "kv_transfer_params": params}
    resp = client.post(decode.url + "/v1/chat/completions", json=decode_body, headers=headers)
    return data, took, resp


def rooms_in(log: str, half: str) -> list[int]:
    return [int(n) for n in re.findall(rf"bootstrap room (\d+): {half} request \S+ ", log)]


def _metric(stack: Stack, role: str, event: str) -> float:
    page = httpx.get(stack.url + "/metrics", timeout=10).text
    match = re.search(rf'^vllm_shim:pd_rooms_total\{{event="{event}",role="{role}"\}} (\S+)$', page, re.M)
    return float(match.group(1)) if match else 0.0


def _wait_metric(stack: Stack, role: str, event: str, at_least: float, timeout: float = 20) -> float:
    deadline = time.monotonic() + timeout
    while (value := _metric(stack, role, event)) < at_least and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


@pytest.mark.parametrize("stream", [False, True])
def test_orchestrated_pair_shares_one_room(pair: tuple[Stack, Stack], stream: bool) -> None:
    prefill, decode = pair
    completed = _metric(prefill, "prefill", "completed")
    answer, took, resp = route_orchestrated(prefill, decode, {**CHAT, "stream": stream})
    # The router got a vLLM completion at once, before any decode existed: the prefill runs on in the background.
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"] == ""
    room = answer["kv_transfer_params"]["bootstrap_room"]
    assert answer["kv_transfer_params"]["remote_port"] == prefill.port + 4
    print(f"\nrouter's prefill call answered in {took * 1000:.1f} ms (stream={stream})")
    assert took < 2.0, "the prefill pod must answer before the decode half is sent"
    assert resp.status_code == 200, resp.text
    if stream:
        events = [line[6:] for line in resp.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]
                       if json.loads(e)["choices"])  # fmt: skip
    else:
        text = resp.json()["choices"][0]["message"]["content"]
    assert text
    # Both engines saw the same room, and the prefill finished once its decode peer took the KV cache.
    assert _wait_metric(prefill, "prefill", "completed", completed + 1) == completed + 1
    assert room in rooms_in(prefill.log(), "prefill")
    assert room in rooms_in(decode.log(), "decode")
    assert f"pd prefill room {room} completed" in prefill.log()
    assert _metric(decode, "decode", "joined") >= 1


def test_time_from_the_routers_prefill_call_to_its_answer(pair: tuple[Stack, Stack]) -> None:
    """What the orchestrated logic costs before decode starts: printed for the docs (docs/deploying.md)."""
    prefill, decode = pair
    with httpx.Client(timeout=600) as client:
        took = sorted(route_orchestrated(prefill, decode, CHAT, client)[1] for _ in range(20))
    p50, p90 = took[len(took) // 2], took[int(len(took) * 0.9)]
    print(f"\nrouter's prefill call → answer over 20 kept-alive calls: p50 {p50 * 1000:.1f} ms, "
          f"p90 {p90 * 1000:.1f} ms, max {took[-1] * 1000:.1f} ms")
    # Waiting for the prefill itself would take the decode's whole run (or SGLang's bootstrap bound, 4 s here).
    assert p50 < 0.5


def test_prefill_without_decode_peer_fails_after_sglang_bound(pair: tuple[Stack, Stack]) -> None:
    prefill, _ = pair
    failed = _metric(prefill, "prefill", "failed")
    body = {**CHAT, "max_tokens": 1, "stream": False, "kv_transfer_params": dict(ROUTER_PREFILL_PARAMS)}
    answer = httpx.post(prefill.url + "/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == 200
    room = answer.json()["kv_transfer_params"]["bootstrap_room"]
    assert _wait_metric(prefill, "prefill", "failed", failed + 1, timeout=30) == failed + 1
    assert re.search(rf"pd prefill room {room} failed after .*timed out after .* in KVPoll.Bootstrapping",
                     prefill.log())  # fmt: skip


def test_plain_logic_is_refused_loudly(pair: tuple[Stack, Stack]) -> None:
    prefill, decode = pair
    # disaggregated_prefill: max_tokens 1 to the prefill, the original body to the decode, no kv_transfer_params.
    for stack, body in ((prefill, {**CHAT, "max_tokens": 1}), (decode, CHAT)):
        resp = httpx.post(stack.url + "/v1/chat/completions", json=body, timeout=30)
        assert resp.status_code == 400
        assert "disaggregated_prefill_orchestrated" in resp.json()["error"]["message"]
    assert "only production-stack's 'disaggregated_prefill_orchestrated'" in prefill.log()
