"""Through the whole stack: the user's key, the HF token and the internal engine key appear in no process's
command line and no line of the pod log, while the user's key still guards /v1 and SGLang's loopback port
takes only the internal key.

The simulated engine prints its whole argument namespace at INFO on start (`server_args=...`), as SGLang
does, so a secret that reached the engine's arguments would show in the log here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shim.plan import ENGINE_SECRETS_FILE
from tests.live.stack import Stack, start_stack

USER_KEY = "sk-user-secret-4711"
HF_TOKEN = "hf_secret_token_0815"
CHAT = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("secrets"), "--api-key", USER_KEY, "--hf-token", HF_TOKEN)
    try:
        running.wait_health(200, timeout=90)
        yield running
    finally:
        running.stop()


def engine_key(stack: Stack) -> str:
    return str(json.loads((stack.run_dir / ENGINE_SECRETS_FILE).read_text())["api_key"])


def stack_processes(stack: Stack) -> dict[int, str]:
    """pid → command line of supervisord and every descendant (the engine runs in a session of its own)."""
    parents, cmdlines = {}, {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parents[int(proc.name)] = int((proc / "stat").read_text().rpartition(")")[2].split()[1])
            cmdlines[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    found, todo = {}, [stack.process.pid]
    while todo:
        pid = todo.pop()
        found[pid] = cmdlines.get(pid, "")
        todo += [child for child, parent in parents.items() if parent == pid]
    return found


def is_engine(cmdline: str) -> bool:
    return " -m sim " in cmdline and "shim.pod.engine_wrapper" not in cmdline


def test_user_key_guards_v1_and_the_engine_takes_only_the_internal_key(stack: Stack) -> None:
    ok = httpx.post(stack.url + "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {USER_KEY}"})
    assert ok.status_code == 200, ok.text
    assert httpx.post(stack.url + "/v1/chat/completions", json=CHAT).status_code == 401
    engine = f"http://127.0.0.1:{stack.port + 1}/v1/models"
    assert httpx.get(engine, headers={"Authorization": f"Bearer {USER_KEY}"}).status_code == 401
    assert httpx.get(engine).status_code == 401
    assert httpx.get(engine, headers={"Authorization": f"Bearer {engine_key(stack)}"}).status_code == 200


def test_no_secret_in_any_command_line_or_log_line(stack: Stack) -> None:
    # Make the middleware and the engine log something about a request first.
    httpx.post(stack.url + "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {USER_KEY}"})
    secrets = (USER_KEY, HF_TOKEN, engine_key(stack))
    processes = stack_processes(stack)
    names = " ".join(processes.values())
    for program in ("supervisord", "haproxy", "-m middleware", "shim.pod.engine_wrapper", "shim.pod.failfast"):
        assert program in names, f"{program} not found among {processes}"
    assert any(is_engine(cmdline) for cmdline in processes.values()), processes
    for pid, cmdline in processes.items():
        for secret in secrets:
            assert secret not in cmdline, f"pid {pid}: {cmdline}"
    log = stack.log()
    assert "[engine] " in log and "server_args=" in log, "the engine did not print its arguments"
    for secret in secrets:
        assert secret not in log


def test_engine_gets_the_hf_token_in_its_environment_only(stack: Stack) -> None:
    engine = next(pid for pid, cmdline in stack_processes(stack).items() if is_engine(cmdline))
    environ = (Path("/proc") / str(engine) / "environ").read_bytes().split(b"\0")
    assert f"HF_TOKEN={HF_TOKEN}".encode() in environ
    assert not any(item.startswith(b"VLLM_API_KEY=") for item in environ)
