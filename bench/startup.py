"""Where `vllm serve` spends its start-up: the shim, supervisord, haproxy.

    python bench/startup.py [--runs 5]

Timings with the simulated engine, medians of `--runs`, each case run in the same sitting:

1. `vllm serve` from exec to the public port accepting (what bench/run.py reports), with its phases:
   exec -> supervisord exec'd (the shim: Python start, imports, translate, render) -> haproxy forked
   -> haproxy listening.
2. supervisord alone, on the same rendered files, from exec to the port accepting: as `vllm serve` runs it
   (`python -m shim.pod.supervise`, whose first poll does not wait) and stock (`python -m
   supervisor.supervisord`). Stock supervisord 4.3's main loop polls with a 1 s timeout *before* the first
   `transition()`, which is what spawns the autostart programs, so every stock start idles about a second.
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

SUPERVISORDS = {
    "supervisord as `vllm serve` runs it (shim.pod.supervise)": "shim.pod.supervise",
    "supervisord (stock 4.3)": "supervisor.supervisord",
}


def time_supervisord(workdir: Path, module: str, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        (port,) = stack.free_ports(1)
        run_dir = workdir / f"{module}{i}"
        env = dict(os.environ, VLLM_SHIM_ENGINE="sim", VLLM_SHIM_RUN_DIR=str(run_dir))
        render = [shutil.which("vllm-shim") or "vllm-shim", "render", str(run_dir), "--", "serve", stack.MODEL]
        render += ["--host", "127.0.0.1", "--port", str(port)]
        subprocess.run(render, env=env, check=True, capture_output=True)
        argv = [sys.executable, "-m", module]
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


def _line(label: str, runs: list[float], extra: str = "") -> str:
    shown = ", ".join(f"{x:.2f}" for x in runs)
    return f"{label} -> listening: min {min(runs):.3f} s, median {statistics.median(runs):.3f} s ({shown}){extra}"


def time_serve(workdir: Path, runs: int) -> None:
    serve = bench.time_startup(runs, workdir)
    phases = ", ".join(f"{k} at {v:.3f} s" for k, v in serve["phases_s"].items())
    print(_line(f"vllm serve ({serve['argv0']})", serve["runs"], f"; medians: {phases}"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vllm-shim-startup-"))
    try:
        print(f"load average {stack.load_average()}")
        time_serve(workdir, args.runs)
        for label, module in SUPERVISORDS.items():
            print(_line(label, time_supervisord(workdir, module, args.runs)))
        print(f"load average {stack.load_average()}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
