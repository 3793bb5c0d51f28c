"""The proxy-path benchmark: direct vs haproxy vs haproxy + middleware, side by side, in one run.

    python bench/run.py                 # full run (~8 min on 2 cores); writes bench/out/latest.json (not committed)
    python bench/summarize.py bench/out/latest.json   # the summary docs cite: bench/results/latest.json
    python bench/run.py --quick         # a few requests per case (the smoke test uses this)
    python bench/plot.py                # docs/benchmarks.png from bench/results/latest.json

One fake upstream (bench/upstream.py, imitating SGLang's OpenAI answers) serves three paths at once:

    direct   client → upstream
    haproxy  client → haproxy → upstream              (the product's rendered haproxy.cfg, middleware server
                                                        pointed at the upstream)
    chain    client → haproxy → middleware → upstream (the real `python -m middleware`)

Every scenario runs on every path, interleaved, `--repeat` times; the tables show medians. CPU is read from
/proc/<pid>/task/*/schedstat (exact on-CPU time of every thread of every worker process; clock-tick
/proc/<pid>/stat only where the kernel has no schedstat) before and after each case. Then
`vllm serve` (simulated engine) is timed from exec to haproxy accepting on the public port, and the
rewrite of the OpenClaw body is timed in-process. Docs: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bodies
import loadgen
import stack
import upstream

PATHS = ("direct", "haproxy", "chain")
CHAT = "/v1/chat/completions"
DEFAULT_JSON = Path(__file__).resolve().parent / "out" / "latest.json"  # raw; bench/summarize.py -> results/

# Issue 13's goals (docs/benchmarks.md has one table per goal).
TARGETS = {
    "added_p50_ms": 0.3,
    "added_p99_ms": 1.0,
    "us_per_chunk": 5.0,
    "stream_ratio": 0.8,
    "worker_scaling": 0.9,
    "rewrite_us": 100.0,
    "startup_s": 1.0,
}


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    body: bytes
    concurrency: int
    requests: int
    chunks: int = 0  # > 0: a stream of this many content events (plus the final event and [DONE])
    gap_ms: float = 0.0
    group: str = "main"  # "main" scenarios make the tables; "sweep" ones feed the plot
    close: bool = False  # `Connection: close`: a new client connection for every request

    @property
    def streaming(self) -> bool:
        return self.chunks > 0

    @property
    def expect_events(self) -> int:
        return self.chunks + 2 if self.chunks else 0

    def request(self) -> bytes:
        headers = {"x-bench-chunks": str(self.chunks), "x-bench-gap-ms": str(self.gap_ms)} if self.chunks else {}
        if self.close:
            headers["Connection"] = "close"
        return loadgen.build_request(CHAT, self.body, headers=headers)


def scenarios(scale: float, sweep: bool, quick: bool = False) -> list[Scenario]:
    """The cases. `quick` keeps every name but shrinks the streams (the smoke test's few-second run)."""

    def n(count: int, floor: int) -> int:
        return max(floor, int(count * scale))

    small, small_stream, claw = bodies.small_chat(), bodies.small_chat(stream=True), bodies.openclaw(20)
    streams, chunks, paced_gap = (16, 10, 1.0) if quick else (256, 200, 10.0)
    few = 4 if quick else 32
    offered = streams * 1000 / paced_gap
    out = [
        Scenario("chat_c1", "small chat, non-streaming, concurrency 1", small, 1, n(1000, 20)),
        Scenario("chat_c64", "small chat, non-streaming, concurrency 64", small, 64, n(4000, 64)),
        Scenario(
            "chat_c16_close",
            "small chat, c=16, a new client connection per request",
            small,
            16,
            n(800, 16),
            close=True,
        ),  # fmt: skip
        Scenario(
            "stream_32x200", f"{few} concurrent streams x {chunks} chunks, no gap", small_stream, few,
            n(128, few), chunks,
        ),  # fmt: skip
        Scenario(
            "stream_256x200",
            f"{streams} concurrent streams x {chunks} chunks, no gap",
            small_stream,
            streams,
            n(256, streams),
            chunks,
        ),  # fmt: skip
        Scenario(
            "stream_256x200_paced",
            f"{streams} streams x {chunks} chunks, {paced_gap:g} ms gap ({offered / 1000:.1f}k chunks/s offered)",
            small_stream,
            streams,
            streams,
            chunks,
            paced_gap,
        ),  # fmt: skip
        Scenario("openclaw_20tools", "OpenClaw 20-tool body (27 KB), stream of 20 chunks, c=1", claw, 1, n(200, 5), 20),
        Scenario("prompt_1mb", "1 MB prompt, non-streaming, concurrency 1", bodies.big_prompt(), 1, n(30, 3)),
    ]
    if sweep:
        stream_chunks = 10 if quick else 50
        for c in (1, 4, 16, 64, 256):
            out.append(
                Scenario(f"sweep_chat_c{c}", f"sweep: chat c={c}", small, c, n(max(300, 12 * c), c), 0, 0, "sweep")
            )
        for c in (1, 16, 64, 256):
            out.append(
                Scenario(f"sweep_stream_c{c}", f"sweep: {stream_chunks}-chunk streams c={c}", small_stream, c,
                         n(max(30, 2 * c), c), stream_chunks, 0, "sweep")
            )  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------- measuring


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class Hop:
    """One path a request can take: the port the client talks to and the programs it crosses."""

    name: str
    port: int
    programs: dict[str, stack.Program]  # role (haproxy, middleware, upstream) -> program


async def measure(scn: Scenario, hop: Hop) -> dict[str, Any]:
    involved, port = hop.programs, hop.port
    me = [os.getpid()]
    cpu0 = {name: prog.cpu() for name, prog in involved.items()}
    client0 = stack.cpu_seconds(me)
    warmup = min(scn.concurrency * 2, 200) if not scn.streaming else scn.concurrency
    res = await loadgen.run_load(
        "127.0.0.1", port, scn.request(), concurrency=scn.concurrency, requests=scn.requests, warmup=warmup,
        expect_events=scn.expect_events,
    )  # fmt: skip
    # The warm-up is inside the CPU window; subtract it pro rata by counting it as requests.
    cpu = {name: prog.cpu() - cpu0[name] for name, prog in involved.items()}
    cpu["client"] = stack.cpu_seconds(me) - client0
    done = res.requests + warmup
    row: dict[str, Any] = {
        "requests": res.requests,
        "errors": res.errors,
        "error_samples": res.error_samples,
        "wall_s": res.wall,
        "p50_ms": pct(res.latencies, 0.50) * 1e3,
        "p99_ms": pct(res.latencies, 0.99) * 1e3,
        "ttfb_p50_ms": pct(res.ttfb, 0.50) * 1e3,
        "ttfb_p99_ms": pct(res.ttfb, 0.99) * 1e3,
        "rps": res.requests / res.wall if res.wall else 0.0,
        "chunks_per_s": res.events / res.wall if res.wall else 0.0,
        "events": res.events,
        # CPU per request and per 1000 SSE events, program by program (warm-up included in both counts).
        "cpu_ms_per_req": {k: v / done * 1e3 for k, v in cpu.items()},
        "rss_mb": {name: prog.rss() for name, prog in involved.items()},
    }
    if scn.streaming:
        events = res.events + warmup * scn.expect_events
        row["cpu_s_per_1k_chunks"] = {k: v / events * 1e3 for k, v in cpu.items()}
    return row


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric field (nested dicts too) over repeats; errors are summed."""
    out: dict[str, Any] = {}
    for key, first in rows[0].items():
        if key == "errors":
            out[key] = sum(r[key] for r in rows)
        elif key == "error_samples":
            out[key] = [s for r in rows for s in r[key]][:5]
        elif isinstance(first, dict):
            out[key] = {k: statistics.median(r[key][k] for r in rows) for k in first}
        elif isinstance(first, (int, float)):
            out[key] = statistics.median(r[key] for r in rows)
    out["repeats"] = len(rows)
    return out


# ---------------------------------------------------------------------------------------------- other checks


def time_startup(runs: int, workdir: Path) -> dict[str, Any]:
    """`vllm serve` with the simulated engine: seconds from exec to the public port accepting connections."""
    # This checkout's shim, whatever `vllm` on PATH is (an install of another checkout would be timed instead):
    # `python -m vllm` is the checkout's own `vllm` package, what the console script runs.
    argv = [sys.executable, "-m", "vllm"]
    samples: list[float] = []
    phases: list[dict[str, float]] = []
    for i in range(runs):
        (port,) = stack.free_ports(1)
        env = dict(os.environ, VLLM_SHIM_ENGINE="sim", VLLM_SHIM_RUN_DIR=str(workdir / f"serve{i}"),
                   PYTHONPATH=str(stack.REPO))  # fmt: skip
        env.pop("VLLM_SHIM_ENGINE_PORT", None)
        env.pop("VLLM_SHIM_MIDDLEWARE_PORT", None)
        log = open(workdir / f"serve{i}.log", "wb")  # noqa: SIM115 (closed below)
        start = time.monotonic()
        proc = subprocess.Popen(
            [*argv, "serve", stack.MODEL, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            cwd=stack.REPO,
        )  # fmt: skip
        try:
            marks = _watch_startup(proc, port, start)
            samples.append(marks["listening"])
            phases.append(marks)
        finally:
            stop_supervisord(proc)
            log.close()
    out: dict[str, Any] = {"runs": samples, "median_s": statistics.median(samples) if samples else float("nan")}
    out["argv0"] = argv[0]
    # Where the time goes: exec → supervisord exec'd → haproxy forked → haproxy accepting (medians).
    out["phases_s"] = {k: statistics.median(p[k] for p in phases) for k in phases[0]} if phases else {}
    return out


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _is_supervisord(cmdline: bytes) -> bool:
    # shim.pod.supervise is what `vllm serve` execs; supervisor.supervisord what it exec'd before.
    return b"shim.pod.supervise" in cmdline or b"supervisor.supervisord" in cmdline


def _watch_startup(proc: subprocess.Popen[bytes], port: int, start: float) -> dict[str, float]:
    """Poll every ~2 ms: when `vllm` has exec'd supervisord, when haproxy exists, when the port accepts."""
    marks: dict[str, float] = {}
    deadline = start + 30
    while time.monotonic() < deadline:
        now = time.monotonic() - start
        if "supervisord" not in marks and _is_supervisord(_cmdline(proc.pid)):
            marks["supervisord"] = now
        if "supervisord" in marks and "haproxy" not in marks:
            kids = stack.process_tree(proc.pid)[1:]
            if any(_cmdline(k).startswith(b"haproxy") or b"/haproxy\0" in _cmdline(k) for k in kids):
                marks["haproxy"] = now
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                marks["listening"] = time.monotonic() - start
                marks.setdefault("supervisord", marks["listening"])
                marks.setdefault("haproxy", marks["listening"])
                return marks
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited with {proc.returncode} before port {port} opened")
        time.sleep(0.002)
    raise TimeoutError(f"vllm serve: port {port} did not open within 30 s")


def stop_supervisord(proc: subprocess.Popen[bytes]) -> None:
    tree = stack.process_tree(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # supervisord stops its programs in order
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for pid in tree[1:]:  # anything the orderly stop left behind, by the ids we saw it start
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def time_rewrite(repeat: int, quick: bool = False) -> dict[str, Any]:
    """In-process cost of each step the middleware runs on the OpenClaw body, and on the 1 MB prompt."""
    import orjson

    from middleware.config import MiddlewareConfig
    from middleware.rewrite import route_rules as rewrite
    from middleware.rewrite.base import context_for

    config = MiddlewareConfig(served_model_names=(stack.MODEL,))

    def per_call_us(fn: Callable[[], object]) -> float:
        timer = timeit.Timer(fn)
        number = 2 if quick else max(1, timer.autorange()[0] // 4)
        return statistics.median(timer.repeat(repeat=repeat, number=number)) / number * 1e6

    out: dict[str, Any] = {}
    for name, raw in (("openclaw_20tools", bodies.openclaw(20)), ("prompt_1mb", bodies.big_prompt())):
        parsed = orjson.loads(raw)
        result = rewrite.rewrite(CHAT, parsed, config)
        row: dict[str, Any] = {
            "bytes": len(raw),
            "needs_parse": rewrite.needs_parse(CHAT, raw, config),
            "changed": result.changed,
            "rules": list(result.rules),
            "needs_parse_us": per_call_us(lambda raw=raw: rewrite.needs_parse(CHAT, raw, config)),
            "loads_us": per_call_us(lambda raw=raw: orjson.loads(raw)),
            "rewrite_us": per_call_us(lambda parsed=parsed: rewrite.rewrite(CHAT, parsed, config)),
        }
        row["dump_us"] = per_call_us(lambda b=result.body: rewrite.dump(b)) if result.changed else 0.0
        if name == "openclaw_20tools":
            # The profile of the rewrite: each rule of the chat table alone, on the client's body.
            ctx = context_for(config)
            row["rules_us"] = {
                rule.name: per_call_us(lambda rule=rule, body=parsed, ctx=ctx: rule.apply(body, ctx))
                for rule in rewrite.ROUTE_RULES[CHAT]
            }
        out[name] = row
    return out


# ---------------------------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class ChainSpec:
    """An extra path to run beside the three (to weigh a lever in the same run): `kind` chain is haproxy →
    middleware → upstream, `kind` haproxy is haproxy → upstream."""

    name: str
    kind: str = "chain"
    workers: int = 1
    variant: tuple[str, ...] = ()
    source: Path | None = None
    haproxy_global: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> ChainSpec:
        """`name;kind=chain;workers=2;variant=--loop asyncio;source=/dir;haproxy=nbthread 1|defaults:option x`
        (haproxy lines go to `global`, or to the end of the section named before a colon: `defaults:`,
        `backend middleware:`)."""
        name, *pairs = text.split(";")
        fields: dict[str, Any] = {}
        for pair in pairs:
            key, _, value = pair.partition("=")
            if key == "workers":
                fields[key] = int(value)
            elif key == "variant":
                fields[key] = tuple(value.split())
            elif key == "source":
                fields[key] = Path(value)
            elif key == "haproxy":
                fields["haproxy_global"] = tuple(x for x in value.split("|") if x)
            elif key == "kind":
                fields[key] = value
            else:
                raise SystemExit(f"--extra-chain: unknown key {key!r} in {text!r}")
        return cls(name, **fields)


@dataclass
class Options:
    quick: bool
    repeat: int
    scale: float
    sweep: bool
    startup_runs: int
    rewrite_repeat: int
    chain: ChainSpec
    extra: tuple[ChainSpec, ...]
    only: tuple[str, ...]


def start_all(workdir: Path, opts: Options) -> tuple[list[stack.Program], dict[str, Hop]]:
    """The upstream, the haproxy-only path, the chain, and any extra chains; all on free ports."""
    programs: list[stack.Program] = []
    hops: dict[str, Hop] = {}
    try:
        specs = (ChainSpec("haproxy", "haproxy", haproxy_global=opts.chain.haproxy_global), opts.chain, *opts.extra)
        up_port, *ports = stack.free_ports(1 + 2 * len(specs))  # all at once, so they differ
        up = stack.start_upstream(workdir, up_port)
        programs.append(up)
        hops["direct"] = Hop("direct", up_port, {"upstream": up})
        # Launch everything first, then wait: the programs start in parallel.
        for i, spec in enumerate(specs):
            public, mw_port = ports[2 * i], ports[2 * i + 1]
            roles: dict[str, stack.Program] = {}
            backend = up_port
            if spec.kind == "chain":
                mw = stack.start_middleware(
                    workdir, mw_port, up_port, spec.workers, spec.variant, spec.source, f"middleware_{spec.name}",
                    wait=False,
                )  # fmt: skip
                programs.append(mw)
                roles["middleware"] = mw
                backend = mw_port
            hap = stack.start_haproxy(
                workdir, f"haproxy_{spec.name}", public, backend, up_port, spec.haproxy_global, wait=False
            )
            programs.append(hap)
            hops[spec.name] = Hop(spec.name, public, {"haproxy": hap, **roles, "upstream": up})
        for prog in programs[1:]:
            if prog.name.startswith("middleware"):
                prog.ready()
        for prog in programs[1:]:
            if prog.name.startswith("haproxy"):
                prog.ready()
    except BaseException:
        for prog in programs:
            prog.stop()
        raise
    return programs, hops


async def run_cases(
    cases: list[Scenario], repeat: int, hops: dict[str, Hop], log: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    names = list(hops)
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {s.name: {p: [] for p in names} for s in cases}
    for r in range(repeat):
        for scn in cases:
            # Rotate the order so no path always runs first (or right after the heaviest one).
            k = r % len(names)
            for path in names[k:] + names[:k]:
                row = await measure(scn, hops[path])
                raw[scn.name][path].append(row)
                log(
                    f"  [{r + 1}/{repeat}] {scn.name:22s} {path:8s} p50 {row['p50_ms']:8.3f} ms  p99 "
                    f"{row['p99_ms']:8.3f} ms  {row['rps']:8.0f} req/s  {row['chunks_per_s']:8.0f} chunks/s  "
                    f"errors {row['errors']}"
                )
    return {
        name: {path: {**median_row(rows), "runs": rows} for path, rows in by_path.items()}
        for name, by_path in raw.items()
    }


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: measured value, bound, pass/miss."""
    cases, checks = results["cases"], []

    def add(name: str, value: float | None, bound: float, better: str, detail: str) -> None:
        ok = value is not None and (value <= bound if better == "<=" else value >= bound)
        checks.append({"target": name, "value": value, "bound": bound, "op": better, "ok": ok, "detail": detail})

    if "chat_c1" in cases:
        c1 = cases["chat_c1"]
        add("chain adds p50 at c=1 (ms)", c1["chain"]["p50_ms"] - c1["direct"]["p50_ms"], TARGETS["added_p50_ms"], "<=",
            f"chain {c1['chain']['p50_ms']:.3f} - direct {c1['direct']['p50_ms']:.3f}")  # fmt: skip
        add("chain adds p99 at c=1 (ms)", c1["chain"]["p99_ms"] - c1["direct"]["p99_ms"], TARGETS["added_p99_ms"], "<=",
            f"chain {c1['chain']['p99_ms']:.3f} - direct {c1['direct']['p99_ms']:.3f}")  # fmt: skip
    for name in ("stream_256x200", "stream_256x200_paced"):
        if name in cases:
            us_hap = 1000 * cases[name]["haproxy"]["cpu_s_per_1k_chunks"]["haproxy"]
            us_mw = 1000 * cases[name]["chain"]["cpu_s_per_1k_chunks"]["middleware"]
            add(f"middleware CPU per SSE chunk, {name} (us)", us_mw, TARGETS["us_per_chunk"], "<=",
                f"haproxy alone relaying the same chunks: {us_hap:.1f} us of its CPU per chunk")  # fmt: skip
    if "stream_32x200" in cases:
        few = cases["stream_32x200"]
        chain, direct = few["chain"]["chunks_per_s"], few["direct"]["chunks_per_s"]
        add("32 streams: chain/direct chunk throughput", chain / direct if direct else None, TARGETS["stream_ratio"],
            ">=", f"chain {chain:.0f} / direct {direct:.0f} chunks/s")  # fmt: skip
    if "stream_256x200" in cases:
        st = cases["stream_256x200"]
        chain, hap = st["chain"]["chunks_per_s"], st["haproxy"]["chunks_per_s"]
        add("256 streams: chain/haproxy chunk throughput (no pool stall)", chain / hap if hap else None,
            TARGETS["stream_ratio"], ">=", f"chain {chain:.0f} / haproxy {hap:.0f} chunks/s")  # fmt: skip
        errors = sum(row["errors"] for name in ("stream_256x200", "stream_256x200_paced") if name in cases
                     for row in cases[name].values())  # fmt: skip
        add("256 streams: errors", float(errors), 0.0, "<=", "all paths, all repeats, paced and not")
    if "chat_c64" in cases and "chain_w2" in cases["chat_c64"]:
        c64 = cases["chat_c64"]
        one, two = c64["chain"]["rps"], c64["chain_w2"]["rps"]
        cpus = results["machine"]["cpus"]
        add("2 middleware workers / 1, chat c=64 req/s, per worker", two / one / 2 if one else None,
            TARGETS["worker_scaling"], ">=", f"{two:.0f} vs {one:.0f} req/s on {cpus} CPUs shared with the client, "
            "upstream and haproxy (the goal assumes free cores)")  # fmt: skip
    rw = results.get("rewrite", {}).get("openclaw_20tools")
    if "rewrite" in results and not rw:
        add("rewrite of the 20-tool body (us)", None, TARGETS["rewrite_us"], "<=", results["rewrite"].get("error", ""))
    if rw:
        add("rewrite of the 20-tool body (us)", rw["rewrite_us"], TARGETS["rewrite_us"], "<=",
            f"rewrite only; + needs_parse {rw['needs_parse_us']:.0f} + loads {rw['loads_us']:.0f}"
            f" + dump {rw['dump_us']:.0f} us in the middleware")  # fmt: skip
    st_up = results.get("startup")
    if st_up and "error" in st_up:
        add("vllm serve -> haproxy listening (s)", None, TARGETS["startup_s"], "<=", st_up["error"])
    if st_up and st_up.get("runs"):
        add("vllm serve -> haproxy listening (s)", st_up["median_s"], TARGETS["startup_s"], "<=",
            f"median of {len(st_up['runs'])}: " + ", ".join(f"{x:.2f}" for x in st_up["runs"]))  # fmt: skip
    return checks


# ---------------------------------------------------------------------------------------------- printing


def _fmt_cpu(cpu: dict[str, float], scale: float, digits: int) -> str:
    return " ".join(f"{k}={v * scale:.{digits}f}" for k, v in cpu.items())


def goals_table(targets: list[dict[str, Any]]) -> str:
    """The targets as a markdown table: what docs/benchmarks.md pastes."""
    lines = ["| goal | value | target | | how measured |", "|---|---|---|---|---|"]
    for t in targets:
        value = "n/a" if t["value"] is None else f"{t['value']:.3g}"
        lines.append(f"| {t['target']} | {value} | {t['op']} {t['bound']:g} | {'pass' if t['ok'] else '**miss**'} | "
                     f"{t['detail']} |")  # fmt: skip
    return "\n".join(lines)


def print_tables(results: dict[str, Any], cases: list[Scenario]) -> None:
    for scn in cases:
        if scn.name not in results["cases"] or scn.group != "main":
            continue
        rows = results["cases"][scn.name]
        print(f"\n== {scn.name}: {scn.title} ({scn.requests} requests x {rows['direct']['repeats']} repeats, medians)")
        print(f"{'path':8s} {'p50 ms':>8s} {'p99 ms':>8s} {'ttfb ms':>8s} {'req/s':>8s} {'chunks/s':>9s} {'err':>4s}  "
              + ("cpu s per 1k chunks" if scn.streaming else "cpu ms per request") + "   rss MB")  # fmt: skip
        for path, r in rows.items():
            cpu = _fmt_cpu(r["cpu_s_per_1k_chunks"], 1, 4) if scn.streaming else _fmt_cpu(r["cpu_ms_per_req"], 1, 3)
            rss = " ".join(f"{k}={v:.0f}" for k, v in r["rss_mb"].items())
            print(f"{path:8s} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['ttfb_p50_ms']:8.3f} {r['rps']:8.0f} "
                  f"{r['chunks_per_s']:9.0f} {r['errors']:4d}  {cpu}   {rss}")  # fmt: skip
        d = rows["direct"]
        added = [f"{p} p50 {r['p50_ms'] - d['p50_ms']:+.3f} p99 {r['p99_ms'] - d['p99_ms']:+.3f} ttfb "
                 f"{r['ttfb_p50_ms'] - d['ttfb_p50_ms']:+.3f}" for p, r in rows.items() if p != "direct"]  # fmt: skip
        print("added vs direct (ms): " + "; ".join(added))
    sweep = [s for s in cases if s.group == "sweep" and s.name in results["cases"]]
    if sweep:
        print("\n== sweep (medians): p50 ms / chunks per s, per path")
        for scn in sweep:
            rows = results["cases"][scn.name]
            cells = "  ".join(f"{p}={r['p50_ms']:.2f}ms/{r['chunks_per_s']:.0f}" for p, r in rows.items())
            print(f"{scn.name:18s} {cells}")
    rw = results.get("rewrite")
    if rw and "error" not in rw:
        print("\n== in-process request handling (median us per call)")
        for name, r in rw.items():
            print(f"{name}: {r['bytes']} bytes, needs_parse={r['needs_parse']}, changed={r['changed']} {r['rules']}: "
                  f"needs_parse {r['needs_parse_us']:.1f}  orjson.loads {r['loads_us']:.1f}  rewrite "
                  f"{r['rewrite_us']:.1f}  dump {r['dump_us']:.1f}")  # fmt: skip
            if "rules_us" in r:
                top = sorted(r["rules_us"].items(), key=lambda kv: -kv[1])[:4]
                print("  rewrite by rule (each alone): " + ", ".join(f"{k} {v:.1f}" for k, v in top))
    if results.get("startup", {}).get("runs"):
        s = results["startup"]
        runs = ", ".join(f"{x:.2f}" for x in s["runs"])
        phases = ", ".join(f"{k} at {v:.2f} s" for k, v in s.get("phases_s", {}).items())
        print(f"\n== vllm serve -> public port accepting: median {s['median_s']:.3f} s ({runs}); medians: {phases}")
    print("\n== goals (issue 13; docs/benchmarks.md shows this table)")
    print(goals_table(results["targets"]))
    la = results["load_average"]
    print(f"\nload average before {la['before']}, after {la['after']} ({results['machine']['cpus']} CPUs)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny settings: every scenario and path, a few requests")
    p.add_argument("--repeat", type=int, default=None, help="interleaved repeats per case (default 3; quick: 1)")
    p.add_argument("--scale", type=float, default=None, help="multiply request counts (default 1; quick: 0.01)")
    p.add_argument("--no-sweep", action="store_true", help="skip the concurrency sweep used by the plot")
    p.add_argument("--startup-runs", type=int, default=None, help="vllm serve start-up timings (default 5; quick 1)")
    p.add_argument("--only", default="", help="comma-separated scenario names")
    p.add_argument("--workers", type=int, default=1, help="the chain's middleware --workers")
    p.add_argument("--haproxy-global", action="append", default=[], help="extra line for haproxy's global section")
    p.add_argument("--middleware-variant", default="", help="arguments for bench/mw_variant.py, e.g. '--loop asyncio'")
    p.add_argument(
        "--extra-chain", action="append", default=[], metavar="SPEC",
        help="another path beside the three, to weigh a lever in the same run: "
        "'name;workers=2', 'name;variant=--loop asyncio', 'name;source=DIR' (a saved middleware package), "
        "'name;kind=haproxy;haproxy=nbthread 1', 'name;haproxy=defaults:http-reuse always'",
    )  # fmt: skip
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    p.add_argument("--keep-logs", action="store_true", help="keep the programs' logs (path printed at the end)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    opts = Options(
        quick=args.quick,
        repeat=args.repeat or (1 if args.quick else 3),
        scale=args.scale or (0.01 if args.quick else 1.0),
        sweep=not args.no_sweep,
        startup_runs=args.startup_runs if args.startup_runs is not None else (1 if args.quick else 5),
        rewrite_repeat=1 if args.quick else 7,
        chain=ChainSpec(
            "chain",
            workers=args.workers,
            variant=tuple(args.middleware_variant.split()),
            haproxy_global=tuple(args.haproxy_global),
        ),  # fmt: skip
        # chain_w2: the scaling goal (2 workers against 1) in the same run.
        extra=tuple(ChainSpec.parse(x) for x in (args.extra_chain or (["chain_w2;workers=2"] * (not args.quick)))),
        only=tuple(x for x in args.only.split(",") if x),
    )
    if shutil.which("haproxy") is None:
        print("bench/run.py: haproxy is not installed (apt-get install haproxy)", file=sys.stderr)
        return 2
    cases = [s for s in scenarios(opts.scale, opts.sweep, opts.quick) if not opts.only or s.name in opts.only]
    workdir = Path(tempfile.mkdtemp(prefix="vllm-shim-bench-"))
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "options": dataclasses.asdict(opts),
        "load_average": {"before": stack.load_average()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }

    def log(line: str) -> None:
        print(line, flush=True)

    programs, hops = start_all(workdir, opts)
    log(f"bench: {len(cases)} cases x {len(hops)} paths x {opts.repeat} repeats; load average {stack.load_average()}")
    try:
        log("bench: " + ", ".join(f"{h.name} :{h.port}" for h in hops.values()))
        results["cases"] = upstream_run(run_cases(cases, opts.repeat, hops, log))
        results["rss_end_mb"] = {prog.name: prog.rss() for prog in programs}
    finally:
        for prog in programs:
            prog.stop()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=str))  # the load results are safe from here
    if opts.startup_runs:
        log("bench: timing vllm serve start-up")
        results["startup"] = _guarded(lambda: time_startup(opts.startup_runs, workdir))
    log("bench: timing the rewrite in-process")
    results["rewrite"] = _guarded(lambda: time_rewrite(opts.rewrite_repeat, opts.quick))
    results["load_average"]["after"] = stack.load_average()
    results["targets"] = evaluate(results)
    results["scenarios"] = {s.name: {k: v for k, v in dataclasses.asdict(s).items() if k != "body"} for s in cases}
    print_tables(results, cases)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {args.json}")
    if args.keep_logs:
        print(f"logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _guarded(step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A side measurement that fails (say, a tree mid-edit) must not throw away the load results."""
    try:
        return step()
    except Exception as exc:  # reported in the output and the JSON
        print(f"bench: WARNING: {exc!r}", file=sys.stderr)
        return {"error": repr(exc)}


def upstream_run(coro: Any) -> Any:
    """Run the load on uvloop (as the upstream does): the client must not be the slow part."""
    result: list[Any] = []

    async def wrapper() -> None:
        result.append(await coro)

    upstream.run(wrapper())
    return result[0]


if __name__ == "__main__":
    raise SystemExit(main())
