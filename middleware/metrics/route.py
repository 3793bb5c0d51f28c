"""GET /metrics on the middleware: the MetricsBridge's page, built from the engine's /metrics.

The production-stack router and Prometheus scrape without credentials, like they do on vLLM, and `ApiKeyAuth`
only guards the /v1-style prefixes, so this route stays open whatever keys are configured.
"""

from __future__ import annotations

import aiohttp

from middleware.asgi import Call
from middleware.context import AppContext, Handler
from middleware.engine.client import Engine

# Under the router's 15 s scrape interval and Prometheus' default 10 s scrape timeout, so a hung engine costs
# one failed fetch (and the bridge then serves its bounded stale block) instead of a failed scrape.
FETCH_TIMEOUT_S = 5.0
# Plain 0.0.4 text, the format the bridge reads: SGLang's prometheus_client answers OpenMetrics or the 1.0.0
# text format only when asked, and gzip whenever it is accepted, which the engine session would not undo
# (it hands bytes on undecoded).
FETCH_HEADERS = {"Accept": "text/plain; version=0.0.4", "Accept-Encoding": "identity"}


class EngineMetricsError(Exception):
    """SGLang's /metrics answered, but not with a page."""


async def fetch_engine_metrics(engine: Engine) -> str:
    headers = dict(FETCH_HEADERS)
    if engine.auth:
        # SGLang leaves /metrics open; the key costs nothing and keeps working if a build ever guards it.
        headers["Authorization"] = engine.auth
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    async with engine.session.get(engine.url("/metrics"), headers=headers, timeout=timeout) as resp:
        body = await resp.read()
    if resp.status != 200:
        raise EngineMetricsError(f"SGLang /metrics answered HTTP {resp.status}")
    return body.decode("utf-8")


def metrics_route(ctx: AppContext) -> Handler:
    async def fetch() -> str:
        return await fetch_engine_metrics(ctx.engine)

    headers = [(b"content-type", ctx.metrics.content_type.encode())]

    async def handle(call: Call) -> None:
        await call.respond(200, await ctx.metrics.render(fetch), headers)

    return handle
