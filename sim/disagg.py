"""`--disaggregation-mode prefill|decode` as SGLang does it, in miniature: bootstrap rooms.

A prefill server runs a bootstrap server on `--host`:`--disaggregation-bootstrap-port` (SGLang's KV-transfer
control plane). Its request carries `bootstrap_room` and waits until the decode side of the same room has
joined, bounded by SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT; then it computes its one token and "sends the KV
cache". A decode server's request carries `bootstrap_host/port/room`: it joins the room through the prefill's
bootstrap server and waits (bounded by SGLANG_DISAGGREGATION_WAITING_TIMEOUT) for that KV cache before decoding.
Failures are answered with SGLang's messages. Every room is logged (`bootstrap room N ...`) so a test can check
that both halves saw the same one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
from aiohttp import web

from sim.errors import SimError

log = logging.getLogger("sim")
_T = TypeVar("_T")
# SGLang's own defaults (sglang/srt/environ.py), in seconds.
DEFAULT_TIMEOUT_S = 300


@dataclass
class Room:
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    kv_sent: asyncio.Event = field(default_factory=asyncio.Event)
    failed: bool = False


@dataclass
class Disagg:
    mode: str  # "prefill" or "decode"
    host: str
    bootstrap_port: int
    bootstrap_timeout: float = DEFAULT_TIMEOUT_S
    waiting_timeout: float = DEFAULT_TIMEOUT_S
    rooms: dict[int, Room] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    @classmethod
    def from_config(cls, mode: str, host: str, port: int, environ: Mapping[str, str] = os.environ) -> Disagg | None:
        if mode not in ("prefill", "decode"):
            return None
        return cls(mode, host, port,
                   float(environ.get("SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT") or DEFAULT_TIMEOUT_S),
                   float(environ.get("SGLANG_DISAGGREGATION_WAITING_TIMEOUT") or DEFAULT_TIMEOUT_S))  # fmt: skip

    async def start(self) -> None:
        """The prefill server's bootstrap listener (SGLang starts it with the server)."""
        if self.mode != "prefill":
            return
        app = web.Application()
        app.router.add_post("/sim/join/{room}", self._join)
        app.router.add_get("/health", _health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.bootstrap_port).start()
        log.info("bootstrap server started on %s:%d", self.host, self.bootstrap_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def serve(self, rid: str, host: str | None, port: int | None, room: int | None,
                    generate: Callable[[], Awaitable[_T]]) -> _T:  # fmt: skip
        """Run `generate` as this server's half of the room's request."""
        if room is None or (self.mode == "decode" and (not host or port is None)):
            raise SimError(f"Invalid request: Disaggregated request received without bootstrap room id. "
                           f"req.rid={rid!r}")  # fmt: skip
        if self.mode == "prefill":
            return await self._prefill(rid, room, generate)
        assert host is not None and port is not None
        return await self._decode(rid, host, port, room, generate)

    async def _prefill(self, rid: str, room: int, generate: Callable[[], Awaitable[_T]]) -> _T:
        state = self.rooms.setdefault(room, Room())
        log.info("bootstrap room %d: prefill request %s waits for its decode peer", room, rid)
        started = time.monotonic()
        try:
            await asyncio.wait_for(state.joined.wait(), self.bootstrap_timeout)
        except asyncio.TimeoutError:
            state.failed = True
            elapsed = time.monotonic() - started
            log.warning("bootstrap room %d: prefill request %s timed out in KVPoll.Bootstrapping", room, rid)
            raise SimError(f"Prefill bootstrap failed for request rank=0 req.rid={rid!r} req.bootstrap_room={room} "
                           f"with exception KVTransferError(bootstrap_room={room}): Request {room} timed out after "
                           f"{elapsed:.1f}s in KVPoll.Bootstrapping", "InternalServerError", 500) from None  # fmt: skip
        finally:
            if state.failed:
                self.rooms.pop(room, None)
        try:
            result = await generate()
        except BaseException:
            state.failed = True
            raise
        finally:
            state.kv_sent.set()
            self.rooms.pop(room, None)
        log.info("bootstrap room %d: prefill request %s sent its KV cache", room, rid)
        return result

    async def _join(self, request: web.Request) -> web.Response:
        """A decode server joins a room; answers once the prefill has sent the KV cache."""
        room = int(request.match_info["room"])
        deadline = time.monotonic() + self.bootstrap_timeout
        while room not in self.rooms:  # the decode side may arrive first: SGLang's decode polls the bootstrap
            if time.monotonic() > deadline:
                return web.json_response({"error": f"room {room}: no prefill request"}, status=404)
            await asyncio.sleep(0.02)
        state = self.rooms[room]
        state.joined.set()
        log.info("bootstrap room %d: decode peer joined", room)
        try:
            await asyncio.wait_for(state.kv_sent.wait(), self.waiting_timeout)
        except asyncio.TimeoutError:
            return web.json_response({"error": f"room {room}: KV cache not sent"}, status=408)
        if state.failed:
            return web.json_response({"error": f"room {room}: prefill failed"}, status=500)
        return web.json_response({"room": room})

    async def _decode(self, rid: str, host: str, port: int, room: int, generate: Callable[[], Awaitable[_T]]) -> _T:
        log.info("bootstrap room %d: decode request %s joins prefill %s:%d", room, rid, host, port)
        url = f"http://{host}:{port}/sim/join/{room}"
        timeout = aiohttp.ClientTimeout(total=self.bootstrap_timeout + self.waiting_timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session, session.post(url) as resp:
                status, reason = resp.status, await resp.text()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            status, reason = 0, repr(exc)
        if status != 200:
            log.warning("bootstrap room %d: decode request %s failed: %s", room, rid, reason)
            raise SimError(f"Decode transfer failed for request rank=0 req.rid={rid!r} req.bootstrap_room={room} "
                           f"with exception KVTransferError(bootstrap_room={room}): {reason}",
                           "InternalServerError", 500)  # fmt: skip
        log.info("bootstrap room %d: decode request %s received the KV cache", room, rid)
        return await generate()


async def _health(_: web.Request) -> web.Response:
    return web.Response(text="OK")
