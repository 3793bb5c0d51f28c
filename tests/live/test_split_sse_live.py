"""An SGLang SSE error event split across reads is still translated, through the whole stack (issue 14 item 6).

The simulated engine's `split_error_mid_stream` fault writes SGLang's error event in two pieces 50 ms apart.
Before: the middleware translated per read, so the client got SGLang's event as it was (type
"BadRequestError" with `object`, not vLLM's shape).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.live.stack import Stack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("split-sse"), VLLM_SHIM_SIM_FAULT="split_error_mid_stream")
    running.wait_health(200, timeout=90)
    yield running
    running.stop()


def test_split_error_event_reaches_the_client_in_vllms_shape(stack: Stack) -> None:
    body = {"model": "test-model", "messages": [{"role": "user", "content": "a b c d e f"}], "max_tokens": 20,
            "stream": True}  # fmt: skip
    with httpx.stream("POST", stack.url + "/v1/chat/completions", json=body, timeout=30) as resp:
        lines = [line for line in resp.iter_lines() if line.startswith("data: ")]
    errors = [json.loads(line[6:]) for line in lines if line.startswith('data: {"error"')]
    assert len(errors) == 1, lines
    assert errors[0] == {"error": {"message": "The engine failed mid-stream.", "type": "BadRequestError",
                                   "param": None, "code": 400}}  # fmt: skip
    assert lines[-1] == "data: [DONE]"
