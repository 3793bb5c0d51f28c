"""Do idle keep-alive timers race? Requests after idle gaps that straddle every hop's timer.

    python bench/keepalive.py             # ~2 min; prints errors per gap and path

The upstream closes idle connections after 5 s, as SGLang's uvicorn does. Each round sends one request on
each of 8 kept-alive client connections, then stays idle for the gap. The product's timers are ordered so
that the side that reuses a connection always gives it up first:

    client -> haproxy      haproxy keeps idle client connections 10 s (timeout http-keep-alive)
    haproxy -> middleware  haproxy drops idle server connections after 5 s (pool-purge-delay); uvicorn 65 s
    middleware -> SGLang   the middleware's pool reuses a connection idle < 4 s; SGLang closes at 5 s

The `haproxy` path (haproxy straight to the upstream) has equal timers on both sides (5 s and 5 s): it shows
what the ordering avoids.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bodies
import loadgen
import run as bench
import stack
import upstream

GAPS = (3.9, 4.1, 4.9, 5.0, 5.1, 6.0)


async def probe(ports: dict[str, int], gaps: tuple[float, ...], rounds: int, width: int) -> dict[str, dict[float, int]]:
    data = loadgen.build_request(bench.CHAT, bodies.small_chat())
    errors = {path: dict.fromkeys(gaps, 0) for path in ports}
    conns = {path: [await loadgen.connect("127.0.0.1", port) for _ in range(width)] for path, port in ports.items()}

    async def one(path: str, i: int) -> bool:
        conn = conns[path][i]
        if conn.closed or not conn.keep_alive:
            conn = conns[path][i] = await loadgen.connect("127.0.0.1", ports[path])
        try:
            _, _, _, status = await conn.request(data)
        except (loadgen.ConnectionBroken, OSError):
            return False
        return status == 200

    for gap in gaps:
        for _ in range(rounds):
            for path in ports:
                ok = await asyncio.gather(*(one(path, i) for i in range(width)))
                errors[path][gap] += ok.count(False)
            await asyncio.sleep(gap)
        # The measured request is the first one after the gap: sample it before the next gap.
        for path in ports:
            ok = await asyncio.gather(*(one(path, i) for i in range(width)))
            errors[path][gap] += ok.count(False)
    return errors


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--gaps", default=",".join(str(g) for g in GAPS))
    args = p.parse_args()
    gaps = tuple(float(g) for g in args.gaps.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="vllm-shim-keepalive-"))
    up_port, hb, hc, mw = stack.free_ports(4)
    programs = []
    try:
        programs.append(stack.start_upstream(workdir, up_port, keep_alive=5.0))
        programs.append(stack.start_middleware(workdir, mw, up_port, wait=False))
        programs.append(stack.start_haproxy(workdir, "haproxy_only", hb, up_port, up_port, wait=False))
        programs.append(stack.start_haproxy(workdir, "haproxy_chain", hc, mw, up_port, wait=False))
        for prog in programs[1:]:
            prog.ready()
        ports = {"direct": up_port, "haproxy": hb, "chain": hc}
        box: list[dict[str, dict[float, int]]] = []

        async def go() -> None:
            box.append(await probe(ports, gaps, args.rounds, args.width))

        upstream.run(go())
    finally:
        for prog in programs:
            prog.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    errors = box[0]
    sent = (args.rounds + 1) * args.width
    print(f"failed requests out of {sent} per gap and path (upstream closes idle connections after 5 s)")
    print("gap s    " + "".join(f"{path:>10s}" for path in errors))
    for gap in gaps:
        print(f"{gap:<8g} " + "".join(f"{errors[path][gap]:10d}" for path in errors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
