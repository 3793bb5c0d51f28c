"""sim/disagg.py: bootstrap rooms as SGLang pairs them. A prefill half waits for the decode half of its room
(which joins through the prefill's bootstrap port), each wait is bounded, and failures carry SGLang's words."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from sim.disagg import Disagg
from sim.errors import SimError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pair(timeout: str = "5") -> tuple[Disagg, Disagg]:
    env = {"SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT": timeout, "SGLANG_DISAGGREGATION_WAITING_TIMEOUT": timeout}
    port = free_port()
    prefill = Disagg.from_config("prefill", "127.0.0.1", port, env)
    decode = Disagg.from_config("decode", "127.0.0.1", port, env)
    assert prefill is not None and decode is not None
    return prefill, decode


async def _with_bootstrap(prefill: Disagg, work: Any) -> Any:
    await prefill.start()
    try:
        return await work
    finally:
        await prefill.stop()


def test_null_mode_is_no_disaggregation() -> None:
    assert Disagg.from_config("null", "127.0.0.1", 8998, {}) is None


def test_halves_of_one_room_meet_and_decode_runs_after_the_kv_is_sent() -> None:
    prefill, decode = pair()
    order: list[str] = []

    async def half(name: str) -> str:
        order.append(name)
        return name

    async def both() -> list[str]:
        # The decode half arrives first here: it waits at the prefill's bootstrap server for the room.
        decoded = asyncio.ensure_future(
            decode.serve("d", "127.0.0.1", prefill.bootstrap_port, 7, lambda: half("decode")))
        await asyncio.sleep(0.1)
        prefilled = await prefill.serve("p", None, None, 7, lambda: half("prefill"))
        return [prefilled, await decoded]

    assert asyncio.run(_with_bootstrap(prefill, both())) == ["prefill", "decode"]
    assert order == ["prefill", "decode"] and prefill.rooms == {}


def test_prefill_without_decode_peer_fails_at_sglangs_bound() -> None:
    prefill, _ = pair(timeout="0.3")

    async def alone() -> None:
        await prefill.serve("p", None, None, 9, lambda: asyncio.sleep(0))

    with pytest.raises(SimError, match=r"Prefill bootstrap failed .* timed out after .*KVPoll.Bootstrapping") as info:
        asyncio.run(_with_bootstrap(prefill, alone()))
    assert info.value.status == 500


def test_decode_of_a_room_no_prefill_holds_fails() -> None:
    prefill, decode = pair(timeout="0.3")

    async def orphan() -> None:
        await decode.serve("d", "127.0.0.1", prefill.bootstrap_port, 11, lambda: asyncio.sleep(0))

    with pytest.raises(SimError, match="Decode transfer failed .*bootstrap_room=11"):
        asyncio.run(_with_bootstrap(prefill, orphan()))


@pytest.mark.parametrize(("mode", "host", "room"), [("prefill", None, None), ("decode", None, 3)])
def test_request_without_room_is_refused_as_sglang_does(mode: str, host: str | None, room: int | None) -> None:
    disagg = Disagg.from_config(mode, "127.0.0.1", 1, {})
    assert disagg is not None
    with pytest.raises(SimError, match="without bootstrap room id"):
        asyncio.run(disagg.serve("r", host, None, room, lambda: asyncio.sleep(0)))
