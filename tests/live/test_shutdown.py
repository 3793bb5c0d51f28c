"""SIGTERM drains: in-flight streams finish, new connections are refused, then everything stops, no orphans."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import httpx
import pytest

from tests.live.engines import READY_TIMEOUT, engine_environ, engine_params
from tests.live.stack import start_stack
from tests.live.test_faults import leftovers

PROMPT = " ".join(f"w{i}" for i in range(150))  # the simulated engine echoes it: 150 tokens, ~3 s at 50/s


async def stream(session: aiohttp.ClientSession, url: str) -> str:
    body = {"model": "test-model", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 400, "stream": True}
    try:
        async with session.post(url, json=body) as response:
            lines = [line async for line in response.content if line.strip()]
    except aiohttp.ClientError as exc:
        return "conn:" + type(exc).__name__
    if any(line.startswith(b'data: {"error"') for line in lines):
        return "error"
    return "done" if lines and lines[-1].startswith(b"data: [DONE]") else "cut"


@pytest.mark.parametrize("engine", engine_params())
def test_sigterm_lets_in_flight_streams_finish(tmp_path: Path, engine: str) -> None:
    stack = start_stack(tmp_path, VLLM_SHIM_SIM_TOKENS_PER_SECOND="50", VLLM_SHIM_DRAIN_SECONDS="20",
                        **engine_environ(engine))
    stack.wait_health(200, timeout=READY_TIMEOUT[engine])

    async def scenario() -> tuple[list[str], float]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            tasks = [asyncio.create_task(stream(session, stack.url + "/v1/chat/completions")) for _ in range(20)]
            await asyncio.sleep(1.0)
            stack.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(1.0)
            # Soft stop: the public port no longer takes new connections while the old ones drain.
            try:
                refused = httpx.get(stack.url + "/health", timeout=2).status_code != 200
            except httpx.TransportError:
                refused = True
            assert refused
            return await asyncio.gather(*tasks), signalled

    outcomes, signalled = asyncio.run(scenario())
    assert outcomes == ["done"] * 20, outcomes
    stack.process.wait(timeout=90)
    took = time.monotonic() - signalled
    assert took < 20 + 60, f"shutdown took {took:.0f}s, over drain + 60"
    assert "draining" in stack.log()
    assert not leftovers(stack), leftovers(stack)
