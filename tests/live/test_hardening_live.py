"""Issue 14 items 3-6 through the whole stack (haproxy → 4 middleware workers → simulated SGLang).

One module-scoped stack with VLLM_SHIM_MIDDLEWARE_WORKERS=4, so every answer here must not depend on which
worker took the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live.stack import Stack, start_stack

KEY = "sk-harden-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
WORKERS = 4


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("hardening"),
        "--api-key", KEY, "--enable-lora", "--enable-sleep-mode", "--max-model-len", "2048",
        VLLM_ALLOW_RUNTIME_LORA_UPDATING="True", VLLM_SERVER_DEV_MODE="1",
        VLLM_SHIM_MIDDLEWARE_WORKERS=str(WORKERS),
    )  # fmt: skip
    running.wait_health(200, timeout=120)
    yield running
    running.stop()


def _post(stack: Stack, path: str, body: Any, timeout: float = 30) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**AUTH, "content-type": "application/json"}
    return httpx.post(stack.url + path, content=raw, headers=headers, timeout=timeout)


def deep_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


# ---- item 3: fail closed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/v1/completions", {"prompt": "x", "structured_outputs": {"json": deep_schema(300)}}),
        ("/v1/completions", {"prompt": "x", "guided_json": deep_schema(300)}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "guided_json": deep_schema(300)}),
    ],
)
def test_deep_schema_is_constrained_not_dropped_nor_a_500(stack: Stack, path: str, extra: dict[str, Any]) -> None:
    """Before: completions lost the constraint (the rule raised and was skipped: unconstrained 200)."""
    reply = _post(stack, path, {"model": "test-model", "max_tokens": 8, **extra})
    assert reply.status_code == 200, reply.text
    choice = reply.json()["choices"][0]
    text = choice["text"] if "text" in choice else choice["message"]["content"]
    assert text.startswith('{"a"'), text  # the simulated engine imitates the schema it was given


def test_rewrite_failures_are_a_metrics_family(stack: Stack) -> None:
    page = httpx.get(stack.url + "/metrics", timeout=10).text
    assert "vllm_shim:rewrite_failures" in page
