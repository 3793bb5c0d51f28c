"""Client requests on their way to the engine: body checks, the rewrite step, and the proxy handlers.

Bad input always ends here as a vLLM-shaped 4xx: wrong content type, an oversized, non-UTF-8, non-JSON,
too deeply nested or non-object body. A body the rewrite leaves alone is forwarded as the same bytes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from middleware import identity, prompt_bound
from middleware.asgi import BodyTooLarge, Call
from middleware.context import AppContext, Handler, Rewriter, SuccessTranslator
from middleware.engine.client import UpstreamError
from middleware.engine_state import fetch_engine_models, is_unknown_model, resolve_prompt_bound
from middleware.errors import VllmError, bad_request, http_error
from middleware.proxy import forward
from middleware.rewrite.failure import rule_failure
from middleware.rewrite.route_rules import NOTES

log = logging.getLogger("middleware")

UNSUPPORTED_MEDIA = bad_request("Unsupported Media Type: Only 'application/json' is allowed")
NOT_AN_OBJECT = bad_request("Input should be a valid dictionary or object to extract fields from")
PRECHECK_MAX_BYTES = 1024
OFFLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Prepared:
    body: bytes  # what the engine gets
    parsed: dict[str, Any] | None  # the client's request, when it was parsed at all
    rules: tuple[str, ...] = ()
    sent_model: object = None  # the `model` the engine gets (echoed back as the client's name)


def content_type_error(value: bytes | None) -> VllmError | None:
    media = (value or b"").split(b";", 1)[0].strip().lower()
    return None if media == b"application/json" else UNSUPPORTED_MEDIA


def too_large(limit: int) -> VllmError:
    return http_error(413, f"The request body is larger than the {limit}-byte limit.")


def parse_object(raw: bytes) -> dict[str, Any] | VllmError:
    try:
        body = orjson.loads(raw)  # also rejects invalid UTF-8 and nesting deeper than 1024
    except orjson.JSONDecodeError as exc:
        return bad_request(f"JSON decode error: {exc}")
    return body if isinstance(body, dict) else NOT_AN_OBJECT


def _precheck_pays(rewriter: Rewriter, route: str, raw: bytes) -> bool:
    """Whether `needs_parse` is cheaper than parsing. It scans the bytes once per trigger (13 on chat), so past
    about 1 KB orjson.loads + rewrite costs less (bench/run.py: a 1 MB prompt takes 19 ms to pre-check and
    1.9 ms to parse and rewrite). Routes the rewrite has no rules for are never parsed: their check is free."""
    if len(raw) <= PRECHECK_MAX_BYTES:
        return True
    return not rewriter.has_rules(route)


def prepare(ctx: AppContext, route: str, raw: bytes, parsed: dict[str, Any] | None = None) -> Prepared | VllmError:
    """Check and rewrite one JSON body for the engine path `route`."""
    rewriter, config = ctx.rewriter, ctx.config
    if parsed is None:
        # Never parse what the rewrite does not need, but a body that is not even an object goes on to
        # the parser so the client gets the precise 400.
        if (
            raw.lstrip()[:1] == b"{"
            and _precheck_pays(rewriter, route, raw)
            and not rewriter.needs_parse(route, raw, config)
        ):
            return Prepared(raw, None)
        parsed_or_error = parse_object(raw)
        if isinstance(parsed_or_error, VllmError):
            return parsed_or_error
        parsed = parsed_or_error
    try:
        result = rewriter.rewrite(route, parsed, config, ctx.state.lora_names)
    except Exception as exc:  # a rewriter raising as a whole: answered like a failed rule
        return _failed(ctx, route, "rewrite", exc)
    failure = getattr(result, "failure", None)
    if failure is not None:
        return _failed(ctx, route, result.rules[0] if result.rules else "rewrite", failure)
    if result.error is not None:
        return result.error
    body = rewriter.dump(result.body) if result.changed else raw
    return Prepared(body, parsed, tuple(result.rules), result.body.get("model"))


def _failed(ctx: AppContext, route: str, rule: str, exc: BaseException) -> VllmError:
    """Fail closed: the request ends with `rule_failure`'s answer, counted and logged (with the traceback
    when it is our bug, a 5xx)."""
    error = rule_failure(rule, exc)
    ctx.observer.count_rule_failure(rule, error.status)
    if error.status >= 500:
        log.error("rewrite rule %s failed on %s", rule, route, exc_info=exc)
    else:
        log.warning("rewrite rule %s refused a body on %s: %r", rule, route, exc)
    return error


async def prepare_fresh(
    ctx: AppContext, route: str, raw: bytes, parsed: dict[str, Any] | None = None
) -> Prepared | VllmError:
    """`prepare`, but an unknown-model 404 is only answered after the engine's adapter list was re-read
    (another worker, or this one before a restart, may have loaded the adapter)."""
    prepared = await _prepare_off_loop(ctx, route, raw, parsed)
    if isinstance(prepared, VllmError) and is_unknown_model(ctx, prepared):
        try:
            await fetch_engine_models(ctx)
        except UpstreamError:
            return prepared  # the engine cannot say otherwise: vLLM's 404 stands
        prepared = await _prepare_off_loop(ctx, route, raw, parsed)
    if isinstance(prepared, Prepared) and prepared.parsed is not None and route in prompt_bound.CHECKED_ROUTES:
        await resolve_prompt_bound(ctx)  # once per process
        if ctx.state.prompt_bound is not None:
            too_long = prompt_bound.check(route, prepared.parsed, *ctx.state.prompt_bound)
            return too_long or prepared
    return prepared


async def _prepare_off_loop(
    ctx: AppContext, route: str, raw: bytes, parsed: dict[str, Any] | None
) -> Prepared | VllmError:
    """Small bodies in place (a thread hop costs ~50 µs); big ones in a thread, so parsing, schema repair and
    client-pattern compilation never hold the event loop (re.compile is Python and yields the GIL)."""
    if len(raw) <= OFFLOAD_BYTES:
        return prepare(ctx, route, raw, parsed)
    return await asyncio.to_thread(prepare, ctx, route, raw, parsed)


async def read_checked(ctx: AppContext, call: Call, json: bool) -> bytes | None:
    """The request body, or None after answering the client with the reason it is refused."""
    if json and (err := content_type_error(call.header(b"content-type"))) is not None:
        await call.respond_error(err)
        return None
    limit = ctx.config.max_body_bytes
    try:
        return await call.read_body(limit)
    except BodyTooLarge:
        await call.respond_error(too_large(limit))
        return None


async def forward_counted(
    ctx: AppContext, call: Call, path: str, body: bytes | None, translate: SuccessTranslator | None, load: bool
) -> None:
    """Forward, counting the request in `/load`'s server_load while it runs when `load` is set."""
    if not load:
        await forward(ctx, call, path, body, translate)
        return
    ctx.state.shared.enter()
    try:
        await forward(ctx, call, path, body, translate)
    finally:
        ctx.state.shared.leave()


async def send_prepared(
    ctx: AppContext, call: Call, path: str, prepared: Prepared | VllmError, translate: SuccessTranslator | None,
    load: bool,
) -> None:  # fmt: skip
    if isinstance(prepared, VllmError):
        await call.respond_error(prepared)
        return
    for rule in prepared.rules:
        ctx.observer.count_rewrite(rule)
        if rule in NOTES:
            log.info("%s: %s", path, NOTES[rule])
    model = prepared.parsed.get("model") if prepared.parsed is not None else None
    if isinstance(model, str):
        call.state["model"] = model
    call.state["identity"] = identity.for_request(path, call.header(b"x-request-id"), model, prepared.sent_model)
    await forward_counted(ctx, call, path, prepared.body, translate, load)


def json_route(
    ctx: AppContext, upstream: str | None = None, translate: SuccessTranslator | None = None, load: bool = False
) -> Handler:
    """A JSON API route: checked, rewritten for the engine path (`upstream`, default the same path), proxied."""

    async def handle(call: Call) -> None:
        raw = await read_checked(ctx, call, json=True)
        if raw is not None:
            path = upstream or call.path
            await send_prepared(ctx, call, path, await prepare_fresh(ctx, path, raw), translate, load)

    return handle


def invocations_route(ctx: AppContext) -> Handler:
    """SageMaker's /invocations: a completions body (has `prompt`, no `messages`) or else a chat body."""

    async def handle(call: Call) -> None:
        raw = await read_checked(ctx, call, json=True)
        if raw is None:
            return
        parsed = parse_object(raw)
        if isinstance(parsed, VllmError):
            await call.respond_error(parsed)
            return
        path = "/v1/completions" if "prompt" in parsed and "messages" not in parsed else "/v1/chat/completions"
        await send_prepared(ctx, call, path, await prepare_fresh(ctx, path, raw, parsed), None, True)

    return handle


def raw_route(ctx: AppContext, upstream: str | None = None) -> Handler:
    """Proxied as is (health, metrics, multipart uploads, response retrieval): only the size is capped."""

    async def handle(call: Call) -> None:
        body = await read_checked(ctx, call, json=False)
        if body is not None:
            await forward(ctx, call, upstream or call.path, body or None)

    return handle
