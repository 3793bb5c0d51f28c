"""The command lines the production-stack chart and operator build from deploy/ launch real SGLang (scripted
scheduler) through the whole stack: SGLang's own parser, resolve_once() and check_server_args() accept what the
shim translates them to, and the pod serves every name the fixtures give it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.live.engines import READY_TIMEOUT, engine_environ, live_engines
from tests.live.stack import start_stack
from tests.packaging.test_deploy import chart_command, operator_command, runtime, values

# start_stack chooses the port on loopback; the pod's own --host/--port are not what this test is about.
PLACEMENT = ("--host", "--port")


def stack_args(argv: list[str]) -> tuple[str, list[str]]:
    """(model, the other arguments) of a `vllm serve MODEL ...` command line, without host and port."""
    assert argv[1] == "serve", argv
    rest, out = argv[3:], []
    while rest:
        word = rest.pop(0)
        if word in PLACEMENT:
            rest.pop(0)
        else:
            out.append(word)
    return argv[2], out


def test_chart_and_operator_command_lines_launch_real_sglang(tmp_path: Path) -> None:
    if "sglang" not in live_engines():
        pytest.skip("needs the real-SGLang engine (VLLM_SHIM_LIVE_ENGINES)")
    spec = values()["servingEngineSpec"]["modelSpec"][0]
    commands = {"chart": chart_command(values(), spec), "operator": operator_command(runtime())}
    stacks = {}
    for name, argv in commands.items():  # started together: their start-ups overlap
        model, args = stack_args(argv)
        (tmp_path / name).mkdir()
        stacks[name] = start_stack(tmp_path / name, *args, model=model, **engine_environ("sglang"))
    try:
        for name, stack in stacks.items():
            stack.wait_health(200, timeout=READY_TIMEOUT["sglang"])
            assert "server_args=" in stack.log(), f"{name}: not SGLang's own server"
            for served in ("Qwen/Qwen3-8B", "qwen3"):
                body = {"model": served, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
                reply = httpx.post(stack.url + "/v1/chat/completions", json=body, timeout=60)
                assert reply.status_code == 200, f"{name} {served}: {reply.text}"
    finally:
        for stack in stacks.values():
            stack.stop()
