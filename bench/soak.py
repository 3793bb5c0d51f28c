#!/usr/bin/env python3
"""Soak: N concurrent streaming clients for T seconds through the whole stack (simulated engine).

Prints, per program (haproxy, middleware, engine): open fds, TCP connections and RSS at start, after the load
and after a short settle, plus request/error counts. Leaks show as numbers that do not come back down.

    python bench/soak.py                       # 500 clients, 60 s
    python bench/soak.py --clients 50 --seconds 5   # the smoke run the test suite does
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live.stack import Stack, start_stack

PROGRAMS = ("haproxy", "middleware", "engine")


@dataclass
class Counts:
    ok: int = 0
    errors: int = 0
    chunks: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


def program_pids(stack: Stack) -> dict[str, list[int]]:
    """Every process of each program: the supervised pid and its descendants."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    result = {}
    for name in PROGRAMS:
        todo, seen = [stack.pid_of(name)], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo.extend(children.get(pid, []))
        result[name] = seen
    return result


def usage(pids: list[int]) -> tuple[int, int, int]:
    fds = sockets = rss_kb = 0
    for pid in pids:
        try:
            links = [str(p.readlink()) for p in Path(f"/proc/{pid}/fd").iterdir()]
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fds += len(links)
        sockets += sum(link.startswith("socket:") for link in links)
        rss_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0)
    return fds, sockets, rss_kb


def snapshot(stack: Stack) -> dict[str, tuple[int, int, int]]:
    return {name: usage(pids) for name, pids in program_pids(stack).items()}


async def client(session: aiohttp.ClientSession, url: str, deadline: float, counts: Counts) -> None:
    body = {"model": "test-model", "messages": [{"role": "user", "content": "soak"}], "max_tokens": 32, "stream": True}
    while time.monotonic() < deadline:
        try:
            async with session.post(url, json=body) as response:
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                async for line in response.content:
                    if line.startswith(b"data: {"):
                        counts.chunks += 1
                        if b'"error"' in line:
                            raise RuntimeError("error event")
            counts.ok += 1
        except Exception as exc:  # a soak counts every failure, whatever it is
            counts.errors += 1
            kind = type(exc).__name__ + ": " + str(exc)[:60]
            counts.kinds[kind] = counts.kinds.get(kind, 0) + 1


async def load(url: str, clients: int, seconds: float) -> Counts:
    counts = Counts()
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session, url, deadline, counts) for _ in range(clients)))
    return counts


def table(before: dict, after: dict, settled: dict) -> str:  # type: ignore[type-arg]
    lines = [f"{'program':<11}{'fds b/a/s':>20}{'sockets b/a/s':>20}{'RSS MiB b/a/s':>24}"]
    for name in PROGRAMS:
        cells = []
        for i in range(3):
            b, a, s = before[name][i], after[name][i], settled[name][i]
            if i == 2:
                cells.append(f"{b / 1024:.0f}/{a / 1024:.0f}/{s / 1024:.0f}")
            else:
                cells.append(f"{b}/{a}/{s}")
        lines.append(f"{name:<11}{cells[0]:>20}{cells[1]:>20}{cells[2]:>24}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--tokens-per-second", default="200")
    parser.add_argument("--settle", type=float, default=30, help="idle seconds before the last snapshot")
    parser.add_argument("--json", action="store_true", help="also print one JSON line with the numbers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(
            Path(tmp), "--max-num-seqs", str(args.clients * 2), VLLM_SHIM_SIM_TOKENS_PER_SECOND=args.tokens_per_second
        )
        try:
            stack.wait_health(200, timeout=90)
            before = snapshot(stack)
            # Two halves: memory that grows in the first and not the second is warm-up, not a leak.
            half = asyncio.run(load(stack.url + "/v1/chat/completions", args.clients, args.seconds / 2))
            middle = snapshot(stack)
            started = time.monotonic()
            counts = asyncio.run(load(stack.url + "/v1/chat/completions", args.clients, args.seconds / 2))
            elapsed = time.monotonic() - started
            after = snapshot(stack)
            time.sleep(args.settle)
            settled = snapshot(stack)
            counts.ok, counts.errors, counts.chunks = (
                counts.ok + half.ok, counts.errors + half.errors, counts.chunks + half.chunks
            )
            for kind, n in half.kinds.items():
                counts.kinds[kind] = counts.kinds.get(kind, 0) + n
        finally:
            stack.stop()
    print(f"soak: {args.clients} streaming clients for {args.seconds:.0f} s (two halves)")
    rate = counts.chunks / (2 * elapsed)
    print(f"requests ok {counts.ok}, errors {counts.errors}, SSE chunks {counts.chunks} ({rate:.0f}/s)")
    for kind, n in sorted(counts.kinds.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {n} × {kind}")
    print(f"b = before load, a = right after, s = after {args.settle:.0f} s idle")
    print(table(before, after, settled))
    rss = "  ".join(f"{n} {middle[n][2] / 1024:.0f}→{after[n][2] / 1024:.0f}" for n in PROGRAMS)
    print(f"RSS MiB after the first half → after the second: {rss}")
    if args.json:
        print(json.dumps({"ok": counts.ok, "errors": counts.errors, "chunks": counts.chunks, "settled": settled}))
    return 0 if counts.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
