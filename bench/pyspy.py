"""Where the time goes: py-spy on one program of the chain while a scenario runs (or on the rewrite alone).

    python bench/pyspy.py --scenario chat_c64 --seconds 20               # profile the middleware
    python bench/pyspy.py --scenario stream_256x200 --target haproxy_chain --seconds 20
    python bench/pyspy.py --rewrite --seconds 10                          # rewrite of the 20-tool body

Needs `pip install py-spy` (and ptrace rights). Writes the collapsed stacks (py-spy `--format raw`) next to
`--out` and prints the top functions by own time and by inclusive time. haproxy is C: use `--target`
only for the Python programs (middleware, upstream).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
import run as bench
import stack

RESULTS = Path(__file__).resolve().parent / "out"  # profiles are regenerated, not committed


def summarize(collapsed: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack_text.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples"]
    for title, counter in (("own time", own), ("inclusive time", inclusive)):
        lines.append(f"-- top {top} by {title}")
        lines += [f"{n / total * 100:6.1f}%  {frame}" for frame, n in counter.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """`func (/long/path/to/pkg/mod.py:123)` -> `func (pkg/mod.py)`: merge the lines of one function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    return f"{name} ({'/'.join(parts[-2:])})" if parts else name


def record(pid: int, seconds: float, out: Path, rate: int) -> subprocess.Popen[bytes]:
    argv = ["py-spy", "record", "--pid", str(pid), "--rate", str(rate), "--duration", str(int(seconds)),
            "--format", "raw", "--output", str(out), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def profile_chain(args: argparse.Namespace) -> Path:
    cases = {s.name: s for s in bench.scenarios(1.0, sweep=False)}
    scn = cases[args.scenario]
    workdir = Path(tempfile.mkdtemp(prefix="vllm-shim-profile-"))
    chain = bench.ChainSpec(
        "chain", workers=args.workers, variant=tuple(args.variant.split()), source=args.source,
        haproxy_global=tuple(args.haproxy_global),
    )  # fmt: skip
    opts = bench.Options(False, 1, 1.0, False, 0, 1, chain, (), ())
    programs, hops = bench.start_all(workdir, opts)
    out = args.out or RESULTS / f"profile_{args.scenario}_{args.target}.txt"
    try:
        target = hops["chain"].programs[args.target]
        # With --workers N, profile the first worker process (the parent only supervises).
        pids = target.pids if args.target != "middleware" or args.workers == 1 else target.pids[1:]
        spy = record(pids[0], args.seconds, out, args.rate)
        time.sleep(0.5)

        async def load() -> None:
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                await loadgen.run_load("127.0.0.1", hops["chain"].port, scn.request(), concurrency=scn.concurrency,
                                       requests=scn.requests, expect_events=scn.expect_events)  # fmt: skip

        bench.upstream_run(load())
        _, err = spy.communicate(timeout=args.seconds + 60)
        if spy.returncode:
            raise SystemExit(f"py-spy failed: {err.decode(errors='replace')}")
    finally:
        for prog in programs:
            prog.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def profile_rewrite(args: argparse.Namespace) -> Path:
    out = args.out or RESULTS / "profile_rewrite_openclaw.txt"
    loop = (
        "import sys, time, orjson; sys.path.insert(0, 'bench'); import bodies\n"
        "from middleware.rewrite import route_rules as rewrite; from middleware.config import MiddlewareConfig\n"
        "cfg = MiddlewareConfig(served_model_names=('bench-model',)); raw = bodies.openclaw(20)\n"
        f"end = time.monotonic() + {args.seconds}\n"
        "while time.monotonic() < end:\n"
        "    if rewrite.needs_parse('/v1/chat/completions', raw, cfg):\n"
        "        r = rewrite.rewrite('/v1/chat/completions', orjson.loads(raw), cfg)\n"
        "        r.changed and rewrite.dump(r.body)\n"
    )
    argv = ["py-spy", "record", "--rate", str(args.rate), "--format", "raw", "--output", str(out), "--",
            sys.executable, "-c", loop]  # fmt: skip
    subprocess.run(argv, check=True, cwd=str(stack.REPO), stdout=subprocess.DEVNULL)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="chat_c64")
    p.add_argument("--target", default="middleware", help="middleware or upstream (Python programs)")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--rate", type=int, default=250, help="samples per second")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--variant", default="", help="bench/mw_variant.py options, e.g. '--loop asyncio'")
    p.add_argument("--source", type=Path, default=None, help="directory with another middleware package to profile")
    p.add_argument("--haproxy-global", action="append", default=[])
    p.add_argument("--rewrite", action="store_true", help="profile needs_parse + loads + rewrite + dump alone")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    RESULTS.mkdir(exist_ok=True)
    out = profile_rewrite(args) if args.rewrite else profile_chain(args)
    print(f"collapsed stacks: {out}")
    print(summarize(out, args.top))


if __name__ == "__main__":
    main()
