"""Where `vllm serve` spends its start-up: the shim, supervisord, haproxy. And what one patch would save.

    python bench/startup.py [--runs 5]

Three timings (simulated engine), medians of `--runs`:

1. `vllm serve` from exec to the public port accepting (what bench/run.py reports), with its phases:
   exec -> supervisord exec'd (the shim: Python start, imports, translate, render) -> haproxy forked
   -> haproxy listening.
2. supervisord alone, on the same rendered files, from exec to the port accepting.
3. the same with supervisord's first poll made non-blocking. supervisord 4.3's main loop
   (`Supervisor.runforever`) polls its sockets with a 1 s timeout *before* the first `transition()`,
   which is what spawns the autostart programs, so every start pays about one idle second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench
import stack

# Runs supervisord with the first poll not waiting; everything else is stock supervisord 4.3.
NOWAIT = """
import sys
from supervisor import poller, supervisord

first = [True]


def patch(cls):
    orig = cls.poll

    def poll(self, timeout):
        if first[0]:
            first[0] = False
            timeout = 0
        return orig(self, timeout)

    cls.poll = poll


for name in ("SelectPoller", "PollPoller", "KQueuePoller"):
    if hasattr(poller, name):
        patch(getattr(poller, name))
sys.exit(supervisord.main())
"""


def time_supervisord(workdir: Path, nowait: bool, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        (port,) = stack.free_ports(1)
        run_dir = workdir / f"{'nowait' if nowait else 'stock'}{i}"
        env = dict(os.environ, VLLM_SHIM_ENGINE="sim", VLLM_SHIM_RUN_DIR=str(run_dir))
        render = [shutil.which("vllm-shim") or "vllm-shim", "render", str(run_dir), "--", "serve", stack.MODEL]
        render += ["--host", "127.0.0.1", "--port", str(port)]
        subprocess.run(render, env=env, check=True, capture_output=True)
        argv = [sys.executable, "-c", NOWAIT] if nowait else [sys.executable, "-m", "supervisor.supervisord"]
        start = time.monotonic()
        proc = subprocess.Popen(
            [*argv, "-n", "-c", str(run_dir / "supervisord.conf")], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() - start > 30:
                        raise RuntimeError("supervisord did not bring haproxy up") from None
                    time.sleep(0.002)
            samples.append(time.monotonic() - start)
        finally:
            bench.stop_supervisord(proc)
    return samples


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vllm-shim-startup-"))
    try:
        print(f"load average {stack.load_average()}")
        serve = bench.time_startup(args.runs, workdir)
        phases = ", ".join(f"{k} at {v:.3f} s" for k, v in serve["phases_s"].items())
        print(f"vllm serve -> listening: median {serve['median_s']:.3f} s; {phases}")
        for nowait in (False, True):
            runs = time_supervisord(workdir, nowait, args.runs)
            label = "supervisord, first poll not waiting" if nowait else "supervisord (stock 4.3)"
            shown = ", ".join(f"{x:.2f}" for x in runs)
            print(f"{label} -> listening: median {statistics.median(runs):.3f} s ({shown})")
        print(f"load average {stack.load_average()}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
