"""Bounded (issue 14 item 6): caches keyed by client strings are bounded in bytes, client patterns cannot make
compilation arbitrarily long, and big bodies are rewritten off the event loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from middleware import inbound
from middleware.rewrite import schema, schema_keywords
from middleware.rewrite.schema_keywords import CACHED_STRING_CHARS, MAX_PATTERN_CHARS, compiles, normalize_type


def test_schema_cache_is_bounded_in_bytes() -> None:
    schema._CACHE.clear()
    schema._cache_bytes = 0
    for i in range(2000):  # ~30 KB each: far past the byte bound long before the entry bound
        schema.repair_parameters({"type": "object", "description": f"{i}" + "d" * 30_000})
    stored = sum(len(k) + len(v or b"") for k, v in schema._CACHE.items())
    assert stored == schema._cache_bytes <= schema._CACHE_TOTAL_BYTES
    assert len(schema._CACHE) < 200


def test_long_client_strings_are_not_cached() -> None:
    schema_keywords._normalize_type_cached.cache_clear()
    schema_keywords._compiles_cached.cache_clear()
    long = "x" * (CACHED_STRING_CHARS + 1)
    assert normalize_type(long) is None and compiles(long)
    assert schema_keywords._normalize_type_cached.cache_info().currsize == 0
    assert schema_keywords._compiles_cached.cache_info().currsize == 0


def test_an_overlong_pattern_is_refused_without_compiling() -> None:
    start = time.perf_counter()
    assert not compiles("(a|b)" * (MAX_PATTERN_CHARS // 5 + 1) + "c")
    assert time.perf_counter() - start < 0.005


def test_big_bodies_are_rewritten_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    class Ctx:  # only what prepare touches through the stub below
        pass

    def fake_prepare(ctx: object, route: str, raw: bytes, parsed: object) -> str:
        try:
            asyncio.get_running_loop()
            seen.append(True)  # on the loop
        except RuntimeError:
            seen.append(False)  # in a worker thread
        return "ok"

    monkeypatch.setattr(inbound, "prepare", fake_prepare)
    asyncio.run(inbound._prepare_off_loop(Ctx(), "/r", b"{}", None))  # type: ignore[arg-type]
    asyncio.run(inbound._prepare_off_loop(Ctx(), "/r", b" " * (inbound.OFFLOAD_BYTES + 1), None))  # type: ignore[arg-type]
    assert seen == [True, False]
