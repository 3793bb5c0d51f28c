"""Every worker's /metrics shows the pod's vllm_shim:* totals, not its own (issue 14 item 4)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from middleware.metrics.bridge import MetricsBridge
from middleware.metrics.shared_counts import FLUSH_SECONDS


async def _page(bridge: MetricsBridge) -> str:
    async def fetch() -> str:
        return ""

    return (await bridge.render(fetch)).decode()


def test_counts_of_other_workers_are_added(tmp_path: Path) -> None:
    async def go() -> str:
        one, two = MetricsBridge("m"), MetricsBridge("m")
        one.share_counts(str(tmp_path))
        two.share_counts(str(tmp_path))
        for _ in range(3):
            one.count_request("/v1/chat/completions", 200)
        two.count_request("/v1/chat/completions", 200)
        two.count_rule_failure("structured_outputs", 400)
        await asyncio.sleep(FLUSH_SECONDS + 0.2)
        two.count_request("/v1/chat/completions", 200)  # own counts are live, not flushed
        two_page = await _page(two)
        await asyncio.sleep(FLUSH_SECONDS + 0.2)  # the others' at most FLUSH_SECONDS behind
        return await _page(one) + "\n----\n" + two_page

    one_page, two_page = asyncio.run(go()).split("\n----\n")
    line = 'vllm_shim:requests_total{route="/v1/chat/completions",status="200"} 5.0'
    assert line in one_page and line in two_page
    assert 'vllm_shim:rewrite_failures_total{rule="structured_outputs",status="400"} 1.0' in one_page


def test_a_gone_workers_counts_stay(tmp_path: Path) -> None:
    async def go() -> str:
        gone = MetricsBridge("m")
        gone.share_counts(str(tmp_path))
        gone.count_disconnect("/v1/completions")
        await asyncio.sleep(FLUSH_SECONDS + 0.2)
        del gone
        time.sleep(0)
        fresh = MetricsBridge("m")  # e.g. after `supervisorctl restart middleware`
        fresh.share_counts(str(tmp_path))
        return await _page(fresh)

    assert 'vllm_shim:client_disconnects_total{route="/v1/completions"} 1.0' in asyncio.run(go())
