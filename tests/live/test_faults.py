"""Fault injection on the real stack: each fault has an expected outcome, and nothing ever hangs or leaks.

Policy (docs/operations.md): haproxy and the middleware restart in place; the engine dying, or any program
that cannot start, takes the pod down with the reason on stderr. Clients get a vLLM-shaped JSON error or a
terminated stream, never a hang.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import aiohttp
import httpx
import pytest

from tests.live.stack import Stack, free_port_block, start_stack

STREAM_BODY = {
    "model": "test-model",
    # The simulated engine echoes the prompt: a long prompt is a long answer.
    "messages": [{"role": "user", "content": " ".join(f"word{i}" for i in range(300))}],
    "max_tokens": 400,
    "stream": True,
}
NON_STREAMING = {**STREAM_BODY, "stream": False}


def leftovers(stack: Stack) -> list[str]:
    """Processes still running that belong to this stack (its run dir or its ports on their command line)."""
    marks = (str(stack.run_dir), f"--port {stack.port + 1}", f"--port {stack.port + 2}")
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(mark in cmdline for mark in marks):
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


async def _stream(session: aiohttp.ClientSession, url: str) -> str:
    try:
        async with session.post(url, json=STREAM_BODY) as response:
            if response.status != 200:
                return f"status {response.status}"
            last, error = b"", False
            async for line in response.content:
                if line.strip():
                    last = line
                    error = error or line.startswith(b'data: {"error"')
            return "error-event" if error else ("done" if b"[DONE]" in last else "cut")
    except aiohttp.ClientError as exc:
        return "conn:" + type(exc).__name__


async def streams_during(stack: Stack, action: object, n: int = 50) -> list[str]:
    """Start n streams, run `action` once they are flowing, and return how each one ended."""
    timeout = aiohttp.ClientTimeout(total=45)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=n)) as session:
        tasks = [asyncio.create_task(_stream(session, stack.url + "/v1/chat/completions")) for _ in range(n)]
        await asyncio.sleep(0.8)
        action()  # type: ignore[operator]
        return await asyncio.gather(*tasks)


def engine_pid(stack: Stack) -> int:
    runner = stack.pid_of("engine")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == runner:
                    return int(proc.name)
            except (OSError, ValueError, IndexError):
                continue
    raise AssertionError("the engine runner has no child")


def wait_exit(stack: Stack, timeout: float = 60) -> None:
    try:
        stack.process.wait(timeout=timeout)
    except Exception:
        pytest.fail(f"the pod did not go down:\n{stack.log()[-3000:]}")


@pytest.fixture
def slow_stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    # 400 tokens at 100/s: streams are still running when the fault hits.
    stack = start_stack(tmp_path, VLLM_SHIM_SIM_TOKENS_PER_SECOND="100")
    yield stack
    stack.stop()
    assert not leftovers(stack), leftovers(stack)


@pytest.mark.parametrize("program", ["haproxy", "middleware"])
def test_kill_9_restarts_in_place(slow_stack: Stack, program: str) -> None:
    slow_stack.wait_health(200, timeout=60)
    victim = slow_stack.pid_of(program)
    outcomes = asyncio.run(streams_during(slow_stack, lambda: os.kill(victim, signal.SIGKILL)))
    assert len(outcomes) == 50  # every stream ended: none hung past the client's timeout
    assert all(o in ("done", "cut", "error-event") or o.startswith(("conn:", "status 50")) for o in outcomes)
    assert slow_stack.process.poll() is None, "restarting a front program must not take the pod down"
    # Until the program is back, haproxy answers in vLLM's JSON error shape; then requests succeed again.
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, f"{program} did not come back"
        try:
            reply = httpx.post(slow_stack.url + "/v1/chat/completions", json=NON_STREAMING, timeout=30)
        except httpx.TransportError:  # haproxy itself restarting: the port is closed for a moment
            time.sleep(0.2)
            continue
        if reply.status_code == 200:
            break
        assert reply.status_code in (502, 503), reply.text
        assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
        time.sleep(0.2)
    assert slow_stack.pid_of(program) != victim
    assert slow_stack.process.poll() is None


def test_kill_9_engine_takes_the_pod_down(slow_stack: Stack) -> None:
    slow_stack.wait_health(200, timeout=60)
    victim = engine_pid(slow_stack)
    outcomes = asyncio.run(streams_during(slow_stack, lambda: os.kill(victim, signal.SIGKILL)))
    assert len(outcomes) == 50
    # Streams in flight end with an error event (the middleware saw the engine go) or are cut with the pod.
    assert all(o in ("error-event", "cut", "done") or o.startswith(("conn:", "status 50")) for o in outcomes)
    assert "error-event" in outcomes
    wait_exit(slow_stack)
    assert "vllm-shim failfast: engine died" in slow_stack.log()


def test_engine_crash_while_loading(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, VLLM_SHIM_SIM_FAULT="crash_on_load", VLLM_SHIM_SIM_LOAD_SECONDS="4")
    try:
        wait_exit(stack)
    finally:
        stack.stop()
    assert "vllm-shim failfast: engine" in stack.log()
    assert not leftovers(stack), leftovers(stack)


def test_engine_that_never_gets_healthy(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, VLLM_SHIM_SIM_FAULT="never_healthy")
    try:
        deadline = time.monotonic() + 15
        seen = set()
        while time.monotonic() < deadline:
            seen.add(stack.health())
            time.sleep(0.3)
        assert seen <= {None, 503}, seen  # never a premature 200
        assert 503 in seen
        assert stack.process.poll() is None  # Kubernetes' startup probe decides, not us
    finally:
        stack.stop()
    assert not leftovers(stack)


def test_engine_hanging_mid_stream_is_aborted_when_the_client_leaves(tmp_path: Path) -> None:
    # Slow enough that the generation is still running when the client gives up.
    stack = start_stack(tmp_path, VLLM_SHIM_SIM_FAULT="hang_mid_stream", VLLM_SHIM_SIM_TOKENS_PER_SECOND="20")
    try:
        stack.wait_health(200, timeout=60)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(stack.url + "/v1/chat/completions", json=STREAM_BODY, timeout=httpx.Timeout(30, read=3))
        engine_metrics = f"http://127.0.0.1:{stack.port + 1}/metrics"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = httpx.get(engine_metrics, timeout=5).text
            aborted = [line for line in text.splitlines() if line.startswith("sglang:num_aborted_requests_total")]
            if aborted and float(aborted[0].split()[-1]) >= 1:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the engine never saw the client's disconnect")
    finally:
        stack.stop()


def test_engine_answering_garbage_gives_a_vllm_shaped_502(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, VLLM_SHIM_SIM_FAULT="garbage")
    try:
        stack.wait_health(200, timeout=60)
        reply = httpx.post(stack.url + "/v1/chat/completions", json=NON_STREAMING, timeout=30)
        assert reply.status_code == 502
        assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
    finally:
        stack.stop()


@pytest.mark.parametrize(("offset", "program"), [(0, "haproxy"), (1, "engine"), (2, "middleware")])
def test_port_already_in_use_takes_the_pod_down_with_the_reason(tmp_path: Path, offset: int, program: str) -> None:
    base = free_port_block()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1" if offset else "0.0.0.0", base + offset))
        squatter.listen()
        stack = start_stack(tmp_path, port=base)
        try:
            wait_exit(stack, timeout=90)
        finally:
            stack.stop()  # a failed expectation must not leave a stack running
    log = stack.log()
    # haproxy and the engine fail within startsecs (FATAL); the middleware's slow import gets it past
    # startsecs, so it is caught as a crash loop instead. Either way: the pod goes down, saying who.
    assert f"vllm-shim failfast: {program}" in log, log[-3000:]
    assert not leftovers(stack), leftovers(stack)


def test_run_directory_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    stack = start_stack(tmp_path, VLLM_SHIM_RUN_DIR=str(blocker / "run"))
    assert stack.process.wait(timeout=30) == 2
    assert "is not writable" in stack.log()
