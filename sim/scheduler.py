"""The simulated scheduler: a FIFO waiting queue, a running set capped by --max-running-requests, a KV pool whose
usage follows the running sequences, a small prefix cache, and paced token emission.

One `generate()` call is one sequence (SGLang expands `n > 1` into n sequences too). Metrics are observed here,
so they move exactly with the simulated load.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sim.knobs import Settings
from sim.metrics import SimMetrics
from sim.sglang_options import SimConfig
from sim.textgen import EOS_TOKEN_ID

THROUGHPUT_WINDOW_SECONDS = 5.0
PREFIX_CACHE_ENTRIES = 256
PAUSE_POLL_SECONDS = 0.05
FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class SeqSpec:
    rid: str
    prompt_ids: tuple[int, ...]
    pieces: Sequence[str]  # the natural reply; cycled when generation must go on (ignore_eos, min_tokens)
    max_tokens: int | None
    stream: bool
    min_tokens: int = 0
    ignore_eos: bool = False
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenEvent:
    text: str
    index: int


@dataclass(frozen=True)
class Finish:
    reason: FinishReason
    matched_stop: int | str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


Event = TokenEvent | Finish


@dataclass(eq=False)
class _Seq:
    spec: SeqSpec
    arrival: float
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    aborted: bool = False
    generated: int = 0
    cached: int = 0
    first_token_at: float | None = None
    last_token_at: float | None = None


class _PrefixCache:
    """Longest-common-prefix matching against recent prompts, a stand-in for SGLang's radix cache."""

    def __init__(self) -> None:
        self._entries: deque[tuple[int, ...]] = deque(maxlen=PREFIX_CACHE_ENTRIES)
        self.hit_tokens = 0
        self.query_tokens = 0

    def lookup_and_insert(self, ids: tuple[int, ...]) -> int:
        best = 0
        for entry in self._entries:
            n = 0
            for a, b in zip(entry, ids, strict=False):
                if a != b:
                    break
                n += 1
            best = max(best, n)
        self._entries.append(ids)
        cached = min(best, max(len(ids) - 1, 0))  # the last prompt token is always computed
        self.hit_tokens += cached
        self.query_tokens += len(ids)
        return cached

    def clear(self) -> None:
        self._entries.clear()
        self.hit_tokens = self.query_tokens = 0


class Scheduler:
    def __init__(self, cfg: SimConfig, settings: Settings, metrics: SimMetrics | None = None) -> None:
        self.cfg = cfg
        self.settings = settings
        self.metrics = metrics
        self._waiting: deque[_Seq] = deque()
        self._running: set[_Seq] = set()
        self._by_rid: dict[str, list[_Seq]] = {}
        self._cache = _PrefixCache()
        self._emitted: deque[float] = deque()
        self.paused = False
        self.memory_released = False

    # -- request side ---------------------------------------------------------------------------------------
    def has_rid(self, rid: str) -> bool:
        return rid in self._by_rid

    async def generate(self, spec: SeqSpec) -> AsyncGenerator[Event, None]:
        seq = _Seq(spec, time.monotonic())
        self._by_rid.setdefault(spec.rid, []).append(seq)
        finished = False
        try:
            self._waiting.append(seq)
            self._schedule()
            await seq.wake.wait()
            async for event in self._decode(seq):
                finished = isinstance(event, Finish) and event.reason != "abort"
                yield event
        finally:
            self._retire(seq, finished)

    async def _decode(self, seq: _Seq) -> AsyncGenerator[Event, None]:
        spec = seq.spec
        limit = spec.max_tokens if spec.max_tokens is not None else self.cfg.context_length - len(spec.prompt_ids)
        reason: FinishReason = "length"
        matched: int | str | None = None
        start = time.monotonic()
        while not seq.aborted:
            if seq.generated >= limit:
                break
            piece = spec.pieces[seq.generated % len(spec.pieces)]
            may_stop = seq.generated >= spec.min_tokens
            if may_stop and not spec.ignore_eos and seq.generated >= len(spec.pieces):
                reason, matched = "stop", EOS_TOKEN_ID
                break
            if may_stop and piece.strip() in spec.stop:
                reason, matched = "stop", piece.strip()
                break
            await self._pace(start, seq.generated)
            while self.paused and not seq.aborted:  # polling keeps abort-while-paused simple
                await asyncio.sleep(PAUSE_POLL_SECONDS)
            if seq.aborted:
                break
            self._record_token(seq)
            yield TokenEvent(piece, seq.generated - 1)
        if seq.aborted:
            reason, matched = "abort", None
        yield Finish(reason, matched, len(spec.prompt_ids), seq.generated, seq.cached)

    async def _pace(self, start: float, index: int) -> None:
        tps = self.settings.tokens_per_second
        due = start + self.settings.ttft_seconds + ((index + 1) / tps if tps > 0 else 0.0)
        await asyncio.sleep(max(0.0, due - time.monotonic()))

    def _record_token(self, seq: _Seq) -> None:
        now = time.monotonic()
        if seq.first_token_at is None:
            seq.first_token_at = now
        elif self.metrics and seq.last_token_at is not None:
            self.metrics.observe("sglang:inter_token_latency_seconds", now - seq.last_token_at)
        seq.last_token_at = now
        seq.generated += 1
        self._emitted.append(now)

    # -- scheduler side -------------------------------------------------------------------------------------
    def _schedule(self) -> None:
        while self._waiting and len(self._running) < self.cfg.max_running_requests and not self.memory_released:
            seq = self._waiting.popleft()
            self._running.add(seq)
            seq.cached = self._cache.lookup_and_insert(seq.spec.prompt_ids)
            if self.metrics:
                self.metrics.observe("sglang:queue_time_seconds", time.monotonic() - seq.arrival)
            seq.wake.set()

    def _retire(self, seq: _Seq, finished: bool) -> None:
        """Runs on completion, abort and client disconnect alike (the generator's finally)."""
        self._running.discard(seq)
        if seq in self._waiting:
            self._waiting.remove(seq)
        siblings = self._by_rid.get(seq.spec.rid, [])
        if seq in siblings:
            siblings.remove(seq)
        if not siblings:
            self._by_rid.pop(seq.spec.rid, None)
        if self.metrics and finished:
            self._observe_finished(seq)
        elif self.metrics:
            self.metrics.inc("sglang:num_aborted_requests")
        self._schedule()

    def _observe_finished(self, seq: _Seq) -> None:
        assert self.metrics is not None
        m, now, streaming = self.metrics, time.monotonic(), "true" if seq.spec.stream else "false"
        prompt = len(seq.spec.prompt_ids)
        m.inc("sglang:num_requests", is_streaming=streaming)
        m.inc("sglang:prompt_tokens", prompt, is_streaming=streaming)
        m.inc("sglang:generation_tokens", seq.generated, is_streaming=streaming)
        if seq.cached:  # as SGLang: the series appears with the first prefix-cache hit, not before
            m.inc("sglang:cached_tokens", seq.cached, cache_source="device")
        m.observe("sglang:e2e_request_latency_seconds", now - seq.arrival, is_streaming=streaming)
        m.observe("sglang:prompt_tokens_histogram", prompt)
        m.observe("sglang:generation_tokens_histogram", seq.generated)
        if seq.first_token_at is not None:
            m.observe("sglang:time_to_first_token_seconds", seq.first_token_at - seq.arrival, is_streaming=streaming)
        if seq.generated > 1 and seq.first_token_at is not None:
            tpot = (now - seq.first_token_at) / (seq.generated - 1)
            m.observe("sglang:request_time_per_output_token_seconds", tpot, is_streaming=streaming)

    # -- control routes -------------------------------------------------------------------------------------
    def abort(self, rid: str | None = None) -> int:
        """Abort one request id, or everything with None; returns how many sequences were hit."""
        targets = [s for r, seqs in self._by_rid.items() if rid is None or r == rid for s in seqs]
        for seq in targets:
            seq.aborted = True
            if seq in self._waiting:
                self._waiting.remove(seq)
                seq.wake.set()  # let it observe the abort and finish
        return len(targets)

    def pause(self, abort_running: bool) -> None:
        if abort_running:
            self.abort()
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def set_memory_released(self, released: bool) -> None:
        self.memory_released = released
        self._schedule()

    def flush_cache(self) -> bool:
        if self._running or self._waiting:
            return False  # SGLang refuses to flush while requests are in flight
        self._cache.clear()
        return True

    # -- observation ----------------------------------------------------------------------------------------
    def gen_throughput(self) -> float:
        horizon = time.monotonic() - THROUGHPUT_WINDOW_SECONDS
        while self._emitted and self._emitted[0] < horizon:
            self._emitted.popleft()
        return len(self._emitted) / THROUGHPUT_WINDOW_SECONDS

    def snapshot(self) -> dict[str, float]:
        used = sum(len(s.spec.prompt_ids) + s.generated for s in self._running)
        pool = self.cfg.max_total_tokens
        hit_rate = self._cache.hit_tokens / self._cache.query_tokens if self._cache.query_tokens else 0.0
        return {
            "sglang:num_running_reqs": len(self._running),
            "sglang:num_queue_reqs": len(self._waiting),
            "sglang:num_paused_reqs": len(self._running) if self.paused else 0,
            "sglang:token_usage": min(used / pool, 1.0) if pool else 0.0,
            "sglang:num_used_tokens": used,
            "sglang:kv_used_tokens": used,
            "sglang:kv_available_tokens": max(pool - used, 0),
            "sglang:max_total_num_tokens": pool,
            "sglang:cache_hit_rate": hit_rate,
            "sglang:gen_throughput": self.gen_throughput(),
            "sglang:context_len": self.cfg.context_length,
        }


async def merge(streams: Sequence[AsyncGenerator[Event, None]]) -> AsyncGenerator[tuple[int, Event], None]:
    """Interleave the events of n sequences as they are produced, tagging each with its choice index.

    Each sequence runs in its own task; closing this generator (client gone) cancels them, which runs each
    sequence's cleanup and counts it as aborted.
    """
    queue: asyncio.Queue[tuple[int, Event | None]] = asyncio.Queue()

    async def pump(index: int, stream: AsyncGenerator[Event, None]) -> None:
        try:
            async for event in stream:
                await queue.put((index, event))
        finally:
            queue.put_nowait((index, None))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        remaining = len(tasks)
        while remaining:
            index, event = await queue.get()
            if event is None:
                remaining -= 1
            else:
                yield index, event
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
