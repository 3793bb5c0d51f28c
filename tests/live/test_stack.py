"""The real stack under real supervisord and haproxy, with the simulated engine, driven like a user would."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.live.stack import Stack, start_stack


def test_health_is_503_until_the_engine_is_warm_then_200(stack: Stack) -> None:
    # haproxy listens before the engine: the first answer must already be a 503, never a refused connection
    # for long and never a premature 200.
    first = None
    deadline = time.monotonic() + 10
    while first is None and time.monotonic() < deadline:
        first = stack.health()
        time.sleep(0.05)
    assert first == 503
    stack.wait_health(200, timeout=30)
    models = httpx.get(stack.url + "/v1/models", timeout=5).json()
    assert [card["id"] for card in models["data"]][0] == "test-model"


def test_openai_client_chat_streamed_and_not(engine_stack: Stack) -> None:
    client = openai.OpenAI(base_url=engine_stack.url + "/v1", api_key="unused")
    reply = client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hello there"}], max_tokens=5
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    chunks = list(
        client.chat.completions.create(
            model="test-model",
            messages=[{"role": "user", "content": "hello there"}],
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None


def test_supervisorctl_status_shows_three_running_programs(stack: Stack) -> None:
    stack.wait_health(200)
    status = stack.supervisorctl("status")
    lines = {line.split()[0]: line for line in status.stdout.splitlines() if line.strip()}
    for program in ("haproxy", "middleware", "engine"):
        assert "RUNNING" in lines[program], status.stdout


def test_program_names_are_visible_in_the_logs(stack: Stack) -> None:
    stack.wait_health(200)
    httpx.get(stack.url + "/v1/models", timeout=5)
    log = stack.log()
    assert "[engine] " in log
    assert "middleware" in log
    assert "haproxy" in log


def test_killed_middleware_comes_back(stack: Stack) -> None:
    stack.wait_health(200)
    before = stack.pid_of("middleware")
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = stack.supervisorctl("status", "middleware").stdout
        if "RUNNING" in status and stack.pid_of("middleware") != before:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"middleware did not come back: {stack.supervisorctl('status').stdout}")
    stack.wait_health(200, timeout=15)
    assert httpx.get(stack.url + "/v1/models", timeout=5).status_code == 200
    assert stack.process.poll() is None


def test_killed_engine_brings_the_pod_down_with_the_reason(stack: Stack) -> None:
    stack.wait_health(200)
    runner = stack.pid_of("engine")
    engine_children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == runner]
    assert engine_children, "the runner should have started the engine"
    os.kill(int(engine_children[0].name), signal.SIGKILL)
    stack.process.wait(timeout=60)  # the pod goes down (TimeoutExpired if it does not)
    log = stack.log()
    assert "engine died" in log
    assert not _alive(int(engine_children[0].name))


def test_vllm_serve_help_and_bad_flag_start_nothing(tmp_path: Path) -> None:
    bad = start_stack(tmp_path, "--no-such-flag")
    assert bad.process.wait(timeout=30) == 2
    assert "unrecognized arguments: --no-such-flag" in bad.log()
    assert not (tmp_path / "run").exists()


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
