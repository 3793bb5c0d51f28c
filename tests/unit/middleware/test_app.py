"""The app in-process (httpx ASGI transport) against a real uvicorn upstream: proxying, headers, the
allow-list, bad input, auth and error translation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from middleware.app import App, create_app
from middleware.config import MiddlewareConfig
from middleware.errors import phrase
from middleware.rewrite import route_rules
from tests.unit.middleware.conftest import RecordingObserver, Upstream, make_config, middleware, run, upstream

__all__ = ["upstream"]  # the fixture, imported for pytest

JSON = {"content-type": "application/json"}
CHAT = b'{"model": "base",  "messages": [{"role": "user", "content": "hi"}], "x": 1.50}'


async def _post(config: MiddlewareConfig, path: str, body: bytes, headers: dict[str, str] | None = None,
                observer: RecordingObserver | None = None) -> httpx.Response:  # fmt: skip
    async with middleware(config, observer) as client:
        return await client.post(path, content=body, headers=headers if headers is not None else JSON)


def test_unchanged_body_is_forwarded_byte_for_byte(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream
    resp = run(_post(make_config(url), "/v1/chat/completions?trace=1", CHAT))
    assert resp.status_code == 200
    sent = fake.state.last()
    assert (sent["method"], sent["path"], sent["query"]) == ("POST", "/v1/chat/completions", b"trace=1")
    assert sent["body"] == CHAT
    assert resp.json()["received"] == CHAT.decode()


def test_rewritten_body_is_dumped_and_rules_counted(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream
    observer = RecordingObserver()
    body = b'{"model": "base", "prompt": "p", "guided_regex": "a+"}'
    resp = run(_post(make_config(url), "/v1/completions", body, observer=observer))
    assert resp.status_code == 200
    assert orjson.loads(fake.state.last()["body"]) == {"model": "base", "prompt": "p", "regex": "a+"}
    assert observer.rewrites == ["guided_regex"]
    assert observer.requests == [("/v1/completions", 200)]


def test_body_the_rewrite_does_not_need_is_never_parsed(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream
    body = b'{"model": "fast", "messages": []}'
    assert run(_post(make_config(url), "/v1/chat/completions", body)).status_code == 200
    assert fake.state.last()["body"] == body


def test_request_headers_filtered_and_response_headers_cleaned(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream
    headers = {**JSON, "x-custom": "kept", "te": "trailers", "proxy-connection": "x", "accept-encoding": "gzip",
               "authorization": "Bearer client", "x-request-id": "abc123", "expect": "100-continue",
               "x-override-bootstrap-host": "10.0.0.1", "x-override-priority": "9"}  # fmt: skip
    resp = run(_post(make_config(url), "/v1/chat/completions", CHAT, headers))
    sent = fake.state.last()["headers"]
    assert sent["x-custom"] == "kept" and sent["x-request-id"] == "abc123"
    assert sent["authorization"] == "Bearer client"  # no keys configured: the client's header goes through
    assert sent["accept-encoding"] == "identity"
    assert "te" not in sent and "proxy-connection" not in sent and "expect" not in sent and sent["host"] != "mw"
    assert not any(key.startswith("x-override-") for key in sent)  # SGLang's control headers never pass
    assert resp.headers["x-request-id"] == "abc123"
    assert "server" not in resp.headers
    assert resp.headers["content-length"] == str(len(resp.content))


@pytest.mark.parametrize(("enabled", "generated"), [(True, True), (False, False)])
def test_request_id_generated_only_with_request_id_headers(upstream: tuple[Upstream, str], enabled: bool,
                                                           generated: bool) -> None:  # fmt: skip
    fake, url = upstream
    resp = run(_post(make_config(url, enable_request_id_headers=enabled), "/v1/chat/completions", CHAT))
    assert ("x-request-id" in resp.headers) is generated
    if generated:
        assert len(resp.headers["x-request-id"]) == 32
        assert fake.state.last()["headers"]["x-request-id"] == resp.headers["x-request-id"]


DENIED = [
    "/flush_cache", "/abort_request", "/load_lora_adapter", "/unload_lora_adapter", "/load_lora_adapter_from_tensors",
    "/release_memory_occupation", "/resume_memory_occupation", "/update_weights_from_disk",
    "/update_weights_from_tensor", "/init_weights_update_group", "/get_weights_by_name", "/weights_checker",
    "/update_weight_version", "/start_profile", "/stop_profile", "/pause_generation", "/continue_generation",
    "/open_session", "/close_session", "/configure_logging", "/set_internal_state", "/freeze_gc", "/slow_down",
    "/hicache/storage-backend", "/pd_role_switch", "/scale_elastic_ep", "/server_info", "/get_server_info",
    "/start_expert_distribution_record", "/dump_expert_distribution_record", "/generate", "/encode",
    "/model_info", "/get_model_info", "/v1/loads", "/api/chat", "/", "/docs", "/openapi.json", "/v1/tokenize",
    "/sleep", "/wake_up", "/is_sleeping", "/reset_prefix_cache", "/v1/load_lora_adapter",
]  # fmt: skip


@pytest.mark.parametrize("path", DENIED)
def test_admin_and_native_routes_are_not_reachable(upstream: tuple[Upstream, str], path: str) -> None:
    fake, url = upstream
    before = len(fake.state.requests)

    async def both() -> tuple[httpx.Response, httpx.Response]:
        async with middleware(make_config(url)) as client:
            return await client.get(path), await client.post(path, content=b"{}", headers=JSON)

    for resp in run(both()):
        assert resp.status_code == 404
        assert resp.json() == {"error": {"message": "Not Found", "type": "Not Found", "param": None, "code": 404}}
    assert len(fake.state.requests) == before


def test_wrong_method_is_405(upstream: tuple[Upstream, str]) -> None:
    async def go() -> httpx.Response:
        async with middleware(make_config(upstream[1])) as client:
            return await client.get("/v1/chat/completions")

    resp = run(go())
    assert resp.status_code == 405 and resp.json()["error"]["type"] == "Method Not Allowed"


BAD_INPUT: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("not-json", b"{nope", JSON, 400, "JSON decode error"),
    ("empty", b"", JSON, 400, "JSON decode error"),
    ("non-utf8", b'{"model": "\xff\xfe"}', JSON, 400, "JSON decode error"),
    ("array", b"[1, 2]", JSON, 400, "valid dictionary"),
    ("string", b'"hi"', JSON, 400, "valid dictionary"),
    ("deep-brackets", b"[" * 100_000, JSON, 400, "JSON decode error"),
    ("deep-object", b'{"a":' * 30_000, JSON, 400, "JSON decode error"),
    ("text-plain", CHAT, {"content-type": "text/plain"}, 400, "Unsupported Media Type"),
    ("no-content-type", CHAT, {}, 400, "Unsupported Media Type"),
    ("form", b"a=1", {"content-type": "application/x-www-form-urlencoded"}, 400, "Unsupported Media Type"),
    ("too-large", b'{"p": "' + b"x" * 300_000 + b'"}', JSON, 413, "limit"),
    ("rewrite-error", b'{"reject": true}', JSON, 400, "rejected by rewrite"),
    ("rewrite-recursion", b'{"walk": true, "a": ' + b"[" * 1000 + b"]" * 1000 + b"}", JSON, 400, "too deeply"),
    ("rewrite-crash-on-types", b'{"explode": true}', JSON, 500, "could not be translated"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "headers", "status", "message"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_a_vllm_4xx(upstream: tuple[Upstream, str], name: str, body: bytes, headers: dict[str, str],
                                 status: int, message: str) -> None:  # fmt: skip
    fake, url = upstream
    before = len(fake.state.requests)
    resp = run(_post(make_config(url, max_body_bytes=200_000), "/v1/chat/completions", body, headers))
    assert resp.status_code == status
    error = resp.json()["error"]
    assert message in error["message"] and error["code"] == status
    assert len(fake.state.requests) == before  # refused before reaching the engine


def test_413_type_is_the_http_phrase(upstream: tuple[Upstream, str]) -> None:
    resp = run(_post(make_config(upstream[1], max_body_bytes=10), "/tokenize", b'{"prompt": "long enough"}'))
    assert resp.json()["error"]["type"] == phrase(413)


def test_engine_validation_error_is_translated(upstream: tuple[Upstream, str]) -> None:
    resp = run(_post(make_config(upstream[1]), "/v1/chat/completions", CHAT, {**JSON, "x-test-mode": "error400"}))
    assert resp.status_code == 400
    assert resp.json() == {"error": {"message": "1 validation error: tools.0.function: Field required",
                                     "type": "Bad Request", "param": "tools.0.function", "code": 400}}  # fmt: skip


def test_engine_plain_text_500_is_translated(upstream: tuple[Upstream, str]) -> None:
    resp = run(_post(make_config(upstream[1]), "/v1/completions", CHAT, {**JSON, "x-test-mode": "text500"}))
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["error"] == {"message": "Internal Server Error", "type": "InternalServerError", "param": None,
                                    "code": 500}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "engine_path", "want"),
    [
        ("/tokenize", "/tokenize", {"tokens": [1, 2], "count": 2, "max_model_len": 4096, "token_strs": None}),
        ("/detokenize", "/detokenize", {"prompt": "hi there"}),
    ],
)
def test_tokenize_shapes(upstream: tuple[Upstream, str], path: str, engine_path: str, want: Any) -> None:
    fake, url = upstream
    resp = run(_post(make_config(url), path, b'{"model": "base", "prompt": "hi"}'))
    assert resp.json() == want and fake.state.last()["path"] == engine_path


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_rerank_shape(upstream: tuple[Upstream, str], path: str) -> None:
    fake, url = upstream
    resp = run(_post(make_config(url), path, b'{"model": "alias", "query": "q", "documents": ["a", "b"]}'))
    body = resp.json()
    assert fake.state.last()["path"] == "/v1/rerank"
    assert body["model"] == "alias" and body["id"].startswith("rerank-") and body["usage"] == {"total_tokens": 12}
    assert body["results"][0] == {"index": 1, "document": {"text": "b"}, "relevance_score": 0.9}


@pytest.mark.parametrize(
    ("body", "engine_path"),
    [(b'{"messages": [{"role": "user", "content": "x"}]}', "/v1/chat/completions"),
     (b'{"prompt": "x"}', "/v1/completions")],
)  # fmt: skip
def test_invocations_picks_the_api_from_the_body(upstream: tuple[Upstream, str], body: bytes, engine_path: str) -> None:
    fake, url = upstream
    assert run(_post(make_config(url), "/invocations", body)).status_code == 200
    assert fake.state.last()["path"] == engine_path


def test_passthrough_routes(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream

    async def go() -> list[httpx.Response]:
        async with middleware(make_config(url)) as client:
            return [await client.get("/metrics"), await client.get("/metrics/"), await client.get("/health")]

    metrics, metrics_slash, health = run(go())
    # /metrics is the middleware's own page: vLLM names derived from the engine's, beside SGLang's series.
    assert metrics.status_code == metrics_slash.status_code == 200
    assert "sglang:num_running_reqs 0.0" in metrics.text and "sglang:num_running_reqs 0.0" in metrics_slash.text
    assert metrics.headers["content-type"].startswith("text/plain")
    assert health.status_code == 200 and health.content == b""


AUTH = [
    # path, method, authorization header, expected status
    ("/v1/chat/completions", "POST", None, 401),
    ("/v1/chat/completions", "POST", "Bearer wrong", 401),
    ("/v1/chat/completions", "POST", "Basic k1", 401),
    ("/v1/chat/completions", "POST", "Bearer k1", 200),
    ("/v1/chat/completions", "POST", "bearer k2", 200),
    ("/v1/chat/completions", "POST", "BEARER k2", 200),
    ("/v1/models", "GET", None, 401),
    ("/v2/rerank", "POST", None, 401),
    ("/inference/v1/generate", "POST", None, 401),
    ("/cohere/v2/chat", "POST", None, 401),
    ("/v1/chat/completions", "OPTIONS", None, 405),
    ("/tokenize", "POST", None, 200),
    ("/health", "GET", None, 200),
    ("/metrics", "GET", None, 200),
    ("/version", "GET", None, 200),
    ("/invocations", "POST", None, 200),
    ("/nowhere", "GET", None, 404),
]


@pytest.mark.parametrize(("path", "method", "authorization", "status"), AUTH)
def test_auth_matrix(upstream: tuple[Upstream, str], path: str, method: str, authorization: str | None,
                     status: int, tmp_path: Path) -> None:  # fmt: skip
    fake, url = upstream
    headers = {**JSON, **({"authorization": authorization} if authorization else {})}
    secrets = tmp_path / "engine-secrets.json"
    secrets.write_text('{"api_key": "internal", "env": {}}')
    config = make_config(url, api_keys=("k1", "k2"), engine_secrets_file=str(secrets))

    async def go() -> httpx.Response:
        async with middleware(config) as client:
            return await client.request(method, path, content=CHAT if method == "POST" else None, headers=headers)

    resp = run(go())
    assert resp.status_code == status
    if status == 401:
        assert resp.json() == {"error": "Unauthorized"}
    elif status == 200 and path not in ("/version", "/v1/models"):
        # The engine always gets the internal key, never a user's, whatever key (if any) the client used.
        assert fake.state.last()["headers"]["authorization"] == "Bearer internal"


def test_observer_sees_every_request_with_its_route_template(upstream: tuple[Upstream, str]) -> None:
    observer = RecordingObserver()

    async def go() -> None:
        async with middleware(make_config(upstream[1], api_keys=("k",)), observer) as client:
            await client.get("/version")
            await client.get("/v1/models/base", headers={"authorization": "Bearer k"})
            await client.get("/v1/models/base")
            await client.get("/secret")

    run(go())
    assert observer.requests == [("/version", 200), ("/v1/models/{model}", 200), ("/v1/models/{model}", 401),
                                 ("unmatched", 404)]  # fmt: skip


def test_default_rewriter_is_the_rewrite_module() -> None:
    app = create_app(MiddlewareConfig())
    assert isinstance(app, App)
    assert app.ctx.rewriter is route_rules
