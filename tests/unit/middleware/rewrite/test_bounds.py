"""Bounded (issue 14 item 6): caches keyed by client strings are bounded in bytes, client patterns cannot make
compilation arbitrarily long, and big bodies are rewritten off the event loop."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from middleware import inbound
from middleware.rewrite import schema, schema_keywords
from middleware.rewrite.schema_keywords import CACHED_STRING_CHARS, MAX_PATTERN_CHARS, compiles, normalize_type


def test_schema_cache_is_bounded_in_bytes() -> None:
    schema.clear_cache()
    for i in range(2000):  # ~30 KB each: far past the byte bound long before the entry bound
        params: dict[str, object] = {"type": "object", "description": f"{i}" + "d" * 30_000}
        if i % 2:  # repaired: cached as a read-only copy, charged at its size in memory
            params["properties"] = []
        schema.repair_parameters(params)
    assert set(schema._SIZES) == set(schema._CACHE)
    assert sum(schema._SIZES.values()) == schema._cache_bytes <= schema._CACHE_TOTAL_BYTES
    assert len(schema._CACHE) < 200
    copies = {k: v for k, v in schema._CACHE.items() if v is not schema._CLEAN}
    assert copies and all(schema._SIZES[k] > len(k) + len(orjson.dumps(v)) for k, v in copies.items())


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
