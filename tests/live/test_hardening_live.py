"""Issue 14 items 3-6 through the whole stack (haproxy → 4 middleware workers → simulated SGLang).

One module-scoped stack with VLLM_SHIM_MIDDLEWARE_WORKERS=4, so every answer here must not depend on which
worker took the request.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
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


# ---- item 4: one state for every worker, across middleware restarts ---------------------------------------

ADAPTER = {"lora_name": "runtime-r", "lora_path": "/loras/r"}
ROUNDS = 3 * WORKERS  # haproxy spreads new connections; enough that every worker answers some


def _get(stack: Stack, path: str) -> httpx.Response:
    # A new connection per call, so haproxy and the kernel spread them over the workers.
    return httpx.get(stack.url + path, headers={**AUTH, "connection": "close"}, timeout=15)


def _chat(stack: Stack, model: str, max_tokens: int = 2) -> httpx.Response:
    # The simulated engine echoes the prompt: a long prompt is a long answer (max_tokens / 200 tok/s).
    prompt = " ".join(f"word{i}" for i in range(max_tokens))
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    return _post(stack, "/v1/chat/completions", body, timeout=60)


def test_runtime_adapter_answers_on_every_worker(stack: Stack) -> None:
    """Before: a chat naming a runtime-loaded adapter 404ed on the workers that had not loaded it."""
    loaded = httpx.post(stack.url + "/v1/load_lora_adapter", json=ADAPTER, headers=AUTH, timeout=30)
    assert loaded.status_code == 200, loaded.text
    statuses = [_chat(stack, "runtime-r").status_code for _ in range(ROUNDS)]
    assert statuses == [200] * ROUNDS
    assert _chat(stack, "never-loaded").status_code == 404


def test_sleep_state_is_the_same_on_every_worker(stack: Stack) -> None:
    assert _post(stack, "/sleep?level=1", b"").status_code == 200
    try:
        assert {_get(stack, "/is_sleeping").json()["is_sleeping"] for _ in range(ROUNDS)} == {True}
        assert {stack.health() for _ in range(ROUNDS)} == {200}
    finally:
        assert _post(stack, "/wake_up", b"").status_code == 200
    assert {_get(stack, "/is_sleeping").json()["is_sleeping"] for _ in range(ROUNDS)} == {False}


def test_load_counts_requests_of_every_worker(stack: Stack) -> None:
    """/load is what the production-stack router balances on: the sum over workers, not one worker's count."""
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        running = [pool.submit(_chat, stack, "test-model", 800) for _ in range(3)]  # ~4 s each
        deadline = time.monotonic() + 10
        while _get(stack, "/load").json()["server_load"] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        seen = {_get(stack, "/load").json()["server_load"] for _ in range(ROUNDS)}
        assert [f.result().status_code for f in running] == [200] * 3
    assert seen == {3}, seen
    assert _get(stack, "/load").json()["server_load"] == 0


def test_restart_while_asleep_keeps_sleep_and_adapters(stack: Stack) -> None:
    """Before: after `supervisorctl restart middleware` the sleep was forgotten, /health went back to SGLang's
    generating /health and turned 503 (the liveness probe would restart a pod that was only asleep), and
    runtime adapters 404ed."""
    httpx.post(stack.url + "/v1/load_lora_adapter", json=ADAPTER, headers=AUTH, timeout=30)  # loaded above or now
    assert _post(stack, "/sleep?level=1", b"").status_code == 200
    try:
        restarted = stack.supervisorctl("restart", "middleware")
        assert "started" in restarted.stdout, restarted.stdout + restarted.stderr
        stack.wait_health(200, timeout=30)
        assert {_get(stack, "/is_sleeping").json()["is_sleeping"] for _ in range(ROUNDS)} == {True}
        deadline = time.monotonic() + 6  # more than one haproxy check interval
        while time.monotonic() < deadline:
            assert stack.health() == 200
            time.sleep(0.5)
    finally:
        assert _post(stack, "/wake_up", b"").status_code == 200
    assert [_chat(stack, "runtime-r").status_code for _ in range(ROUNDS)] == [200] * ROUNDS


# ---- item 6: bounded ---------------------------------------------------------------------------------------


def test_prompt_far_beyond_the_context_is_refused_at_once(stack: Stack) -> None:
    """Before: a 20 MB prompt went to SGLang, whose tokenizer worked on it for more than 30 s before refusing.
    Here the model has no tokenizer.json, so the bound is 2048 tokens x FALLBACK_CHARS_PER_TOKEN (1024)."""
    limit = 2048 * 1024
    start = time.monotonic()
    huge = {"model": "test-model", "prompt": "x " * (10 * 1024 * 1024), "max_tokens": 1}  # 20 MB
    reply = _post(stack, "/v1/completions", huge)
    elapsed = time.monotonic() - start
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == "input_text" and f"(at most {limit} characters)" in error["message"]
    assert elapsed < 5, elapsed  # parse + count, no tokenization
    chat = {"model": "test-model", "messages": [{"role": "user", "content": "y" * (limit + 1)}], "max_tokens": 1}
    assert _post(stack, "/v1/chat/completions", chat).json()["error"]["param"] == "input_text"


# ---- item 5: vLLM parity -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/score", {"text_1": "a", "text_2": ["b"]}),
        ("/score", {"text_1": "a", "text_2": ["b"]}),
        ("/classify", {"input": "a"}),
        ("/v1/messages", {"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/messages/count_tokens", {"messages": [{"role": "user", "content": "hi"}]}),
    ],
)
def test_unknown_model_is_vllms_404_on_every_route_naming_one(stack: Stack, path: str, body: dict[str, Any]) -> None:
    """Before: these routes skipped the model check and SGLang answered in its own way."""
    reply = _post(stack, path, {"model": "no-such-model", **body})
    assert reply.status_code == 404, reply.text
    error = reply.json()["error"]
    assert error["type"] == "NotFoundError" and error["param"] == "model"
    assert "no-such-model" in error["message"]


def test_response_identity_as_vllm_derives_it(stack: Stack) -> None:
    """Before: ids were SGLang's bare hex (no `chatcmpl-`/`cmpl-`, X-Request-Id ignored) and `model` was
    `test-model:runtime-r` for an adapter request."""
    import openai

    httpx.post(stack.url + "/v1/load_lora_adapter", json=ADAPTER, headers=AUTH, timeout=30)  # may be loaded
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key=KEY, max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    chat = client.chat.completions.create(model="runtime-r", messages=messages, max_tokens=3,
                                          extra_headers={"X-Request-Id": "hdr-1"})  # fmt: skip
    assert (chat.id, chat.model) == ("chatcmpl-hdr-1", "runtime-r")
    chat = client.chat.completions.create(model="test-model", messages=messages, max_tokens=3,
                                          extra_body={"request_id": "body-1"})  # fmt: skip
    assert (chat.id, chat.model) == ("chatcmpl-body-1", "test-model")
    stream = client.chat.completions.create(model="runtime-r", messages=messages, max_tokens=5, stream=True)
    chunks = list(stream)
    assert chunks and {(c.id[:9], c.model) for c in chunks} == {("chatcmpl-", "runtime-r")}
    assert len({c.id for c in chunks}) == 1
    completion = client.completions.create(model="runtime-r", prompt="hello", max_tokens=3)
    assert completion.id.startswith("cmpl-") and completion.model == "runtime-r"
    streamed = list(client.completions.create(model="runtime-r", prompt="hello", max_tokens=3, stream=True))
    assert {(c.id[:5], c.model) for c in streamed} == {("cmpl-", "runtime-r")}


def test_sampling_value_beyond_sglangs_range_is_clamped_logged_and_counted(stack: Stack) -> None:
    """Before: repetition_penalty 2.5 (vLLM samples with it) was a 400."""
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
            "repetition_penalty": 2.5}  # fmt: skip
    assert _post(stack, "/v1/chat/completions", body).status_code == 200
    # Any worker may have counted it: scrape until the one that did answers (each scrape is a new connection).
    pages = [_get(stack, "/metrics").text for _ in range(ROUNDS)]
    assert any('vllm_shim:rewrites_total{rule="repetition_penalty"}' in page for page in pages)
    assert "repetition_penalty above SGLang's limit clamped to 2.0" in stack.log()


def test_every_worker_reports_the_pods_counters(stack: Stack) -> None:
    """Before: each worker's /metrics showed only its own vllm_shim:* counts, so a scrape's answer depended on
    the worker and Prometheus saw counters jump up and down.

    /is_sleeping, not /version or /health: haproxy's health checks ask those every few seconds, so their counts
    move while the scrapes run (CI saw {22, 23} that way)."""
    for _ in range(ROUNDS):
        _get(stack, "/is_sleeping")
    # Others' counts are published within FLUSH_SECONDS (0.5 s) of a change; a loaded machine may be later, so
    # scrape rounds until every worker agrees. Before the fix they never did.
    deadline = time.monotonic() + 15
    while True:
        values = set()
        for _ in range(ROUNDS):
            page = _get(stack, "/metrics").text
            prefix = 'vllm_shim:requests_total{route="/is_sleeping",status="200"}'
            values.add(float(next(ln for ln in page.splitlines() if ln.startswith(prefix)).rsplit(" ", 1)[1]))
        if len(values) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(values) == 1 and values.pop() >= ROUNDS, values


def test_n_below_one_is_vllms_400(stack: Stack) -> None:
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "n": 0}
    reply = _post(stack, "/v1/chat/completions", body)
    assert reply.status_code == 400 and reply.json()["error"]["message"] == "n must be at least 1, got 0."


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/v1/chat/completions", {"temperature": 0, "n": 2}, "n must be 1 when using greedy sampling, got 2."),
        ("/v1/chat/completions", {"tool_choice": "required"}, "When using `tool_choice`, `tools` must be set."),
        ("/v1/completions", {"max_tokens": 0}, "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)"),
        ("/v1/completions", {"stop": [""]}, "stop cannot contain an empty string."),
    ],
)
def test_values_vllm_rejects_get_vllms_400(stack: Stack, path: str, fields: dict[str, Any], message: str) -> None:
    """SGLang would answer these (identical greedy choices, no tool call, no output): vLLM refuses them."""
    base: dict[str, Any] = {"model": "test-model", "max_tokens": 2}
    if path == "/v1/completions":
        base["prompt"] = "hi"
    else:
        base["messages"] = [{"role": "user", "content": "hi"}]
    reply = _post(stack, path, {**base, **fields})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["message"] == message
    valid = {"n": 1, "tool_choice": "none", "stop": ["x"], "max_tokens": 2}
    accepted = _post(stack, path, {**base, **fields, **{k: valid[k] for k in fields if k in valid}})
    assert accepted.status_code == 200, accepted.text


def test_schema_sglang_refuses_is_loosened_logged_and_counted(stack: Stack) -> None:
    """Before: `multipleOf` (vLLM enforces it) made SGLang's xgrammar check refuse the whole request with a 400."""
    schema = {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 7}}, "required": ["n"]}
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20,
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}}  # fmt: skip
    reply = _post(stack, "/v1/chat/completions", body)
    assert reply.status_code == 200, reply.text
    assert isinstance(json.loads(reply.json()["choices"][0]["message"]["content"])["n"], int)
    pages = [_get(stack, "/metrics").text for _ in range(ROUNDS)]
    assert any('vllm_shim:rewrites_total{rule="schema_limits"}' in page for page in pages)
    assert "#/properties/n: dropped multipleOf" in stack.log()


@pytest.mark.parametrize("path", ["/v1/score", "/score"])
def test_vllm_score_request_is_answered_by_sglangs_rerank(stack: Stack, path: str) -> None:
    """Before: vLLM's {text_1, text_2} went to SGLang's label-token scoring API, a different computation."""
    documents = ["the cat sat", "stock prices fell", "a cat on a mat"]
    reply = _post(stack, path, {"model": "test-model", "text_1": "cat", "text_2": documents})
    assert reply.status_code == 200, reply.text
    score = reply.json()
    assert score["object"] == "list" and score["id"].startswith("score-") and score["model"] == "test-model"
    assert [d["index"] for d in score["data"]] == [0, 1, 2] and {d["object"] for d in score["data"]} == {"score"}
    rerank = _post(stack, "/v1/rerank", {"model": "test-model", "query": "cat", "documents": documents}).json()
    by_index = {r["index"]: r["relevance_score"] for r in rerank["results"]}
    assert [d["score"] for d in score["data"]] == [by_index[i] for i in range(3)]
    several = _post(stack, path, {"model": "test-model", "text_1": ["a", "b"], "text_2": ["c", "d"]})
    assert several.status_code == 400 and "pairwise is not supported" in several.json()["error"]["message"]
