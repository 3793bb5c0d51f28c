"""Start, watch and stop the programs a benchmark run needs: the fake upstream, haproxy, the middleware.

haproxy's configuration is the product's own: `shim.translate` + `shim.render` (the same call `vllm serve`
makes), with the middleware port pointed either at the real middleware (full chain) or straight at the
upstream (haproxy-only path). The middleware is the real one: `python -m middleware --config ...`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from middleware.config import MiddlewareConfig  # noqa: E402
from shim.plan import Ports  # noqa: E402
from shim.render import render  # noqa: E402
from shim.translate import translate  # noqa: E402

MODEL = "bench-model"
SECTIONS = ("defaults:", "frontend public:", "backend middleware:", "backend engine:")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SCHEDSTAT = os.path.exists(f"/proc/self/task/{os.getpid()}/schedstat")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free a moment ago (bound together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> float:
    """Seconds until 127.0.0.1:port accepts a connection; raises on timeout or if `proc` exits."""
    start = time.monotonic()
    while True:
        with socket.socket() as s, contextlib.suppress(OSError):
            s.connect(("127.0.0.1", port))
            return time.monotonic() - start
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before port {port} opened")
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"port {port} did not open within {timeout}s")
        time.sleep(0.002)


def http_status(port: int, path: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = s.recv(64)
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def wait_status(port: int, path: str, status: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if http_status(port, path) == status:
                return
        time.sleep(0.05)
    raise TimeoutError(f"GET :{port}{path} never answered {status} within {timeout}s")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def process_tree(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, ()))
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time of `pids` (all threads), in nanoseconds' resolution where the kernel keeps schedstat.

    /proc/<pid>/stat counts clock ticks (10 ms): a --quick case costs a program one or two ticks, so a reading
    of 0 was common under load and a capacity computed from it came out missing. Each thread's schedstat
    holds its exact on-CPU time. Its one blind spot, threads that exit mid-case, does not apply to the programs
    measured here (their threads live as long as they do). One source per machine, so deltas are consistent.
    """
    read = _schedstat_seconds if SCHEDSTAT else _stat_seconds
    return sum(read(pid) for pid in pids)


def _stat_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):  # the process is gone
        return 0.0


def _schedstat_seconds(pid: int) -> float:
    ns = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                ns += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):  # the thread exited, or no schedstat in this kernel
            continue
    return ns / 1e9


def rss_mb(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE_KB
        except (OSError, IndexError, ValueError):
            continue
    return total / 1024


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


@dataclass
class Program:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    pids: list[int] = field(default_factory=list)
    port: int = 0
    workers: int = 1

    def ready(self, timeout: float = 30) -> None:
        """Wait until the program serves: haproxy's /health is 200 (its servers start DOWN from the state file
        and come UP at the first passing check), the middleware's /version is 200."""
        wait_port(self.port, timeout, self.proc)
        if self.name.startswith("haproxy"):
            wait_status(self.port, "/health", 200, timeout)
        elif self.name.startswith("middleware"):
            wait_status(self.port, "/version", 200, timeout)
            if self.workers > 1:
                time.sleep(1.0)  # let every worker finish starting before reading the process tree
        self.refresh()

    def refresh(self) -> None:
        """Worker processes (haproxy -W, uvicorn --workers) appear after start: look the tree up again."""
        self.pids = process_tree(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pids)

    def rss(self) -> float:
        return rss_mb(self.pids)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Each program runs in its own session (its pgid is its pid): signal that group only.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def spawn(
    name: str, argv: Sequence[str], workdir: Path, env: dict[str, str] | None = None, cwd: Path = REPO
) -> Program:
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, cwd=str(cwd),
        )  # fmt: skip
    return Program(name, proc, log)


def start_upstream(workdir: Path, port: int, keep_alive: float = 0.0) -> Program:
    argv = [sys.executable, str(REPO / "bench" / "upstream.py"), "--port", str(port), "--keep-alive", str(keep_alive)]
    program = spawn("upstream", argv, workdir)
    wait_port(port, 20, program.proc)
    program.refresh()
    return program


def haproxy_files(
    run_dir: Path, public: int, backend_port: int, engine_port: int, global_extra: Sequence[str] = ()
) -> dict[str, str]:
    """The product's rendered haproxy.cfg and haproxy.state, with the middleware server at `backend_port`."""
    plan = translate(
        ["serve", MODEL, "--host", "127.0.0.1", "--port", str(public)], {"VLLM_SHIM_RUN_DIR": str(run_dir)}
    )
    # The haproxy-only path points both backends at the upstream, which translate() refuses (ports must
    # differ on a real pod), so the ports are set on the plan afterwards.
    files = render(dataclasses.replace(plan, ports=Ports(public=public, middleware=backend_port, engine=engine_port)))
    cfg = files["haproxy.cfg"]
    for line in global_extra:
        # "SECTION: LINE" goes to the end of that section (so it wins over the template's own lines),
        # anything else to global.
        named = line.startswith(SECTIONS)
        section, _, text = line.partition(":") if named else ("global", "", line)
        start = cfg.index(f"\n{section}\n") + 1
        end = cfg.find("\n\n", start)
        end = len(cfg) if end < 0 else end + 1
        cfg = cfg[:end] + f"    {text.strip()}\n" + cfg[end:]
    files["haproxy.cfg"] = cfg
    return {name: files[name] for name in ("haproxy.cfg", "haproxy.state")}


def start_haproxy(
    workdir: Path, name: str, public: int, backend_port: int, engine_port: int, global_extra: Sequence[str] = (),
    wait: bool = True,
) -> Program:  # fmt: skip
    run_dir = workdir / name
    run_dir.mkdir(exist_ok=True)
    for fname, text in haproxy_files(run_dir, public, backend_port, engine_port, global_extra).items():
        (run_dir / fname).write_text(text)
    # The command supervisord runs in the product (shim/render.py): master-worker, foreground.
    program = spawn(name, ["haproxy", "-W", "-db", "-f", str(run_dir / "haproxy.cfg")], workdir)
    program.port = public
    if wait:
        program.ready()
    return program


def write_middleware_config(workdir: Path, upstream_port: int) -> Path:
    config = MiddlewareConfig(engine_url=f"http://127.0.0.1:{upstream_port}", served_model_names=(MODEL,))
    path = workdir / "middleware.json"
    path.write_text(config.to_json())
    return path


def start_middleware(
    workdir: Path, port: int, upstream_port: int, workers: int = 1, variant: Sequence[str] = (),
    source: Path | None = None, name: str = "middleware", wait: bool = True,
) -> Program:  # fmt: skip
    """The real middleware; `variant` (e.g. `--loop asyncio`) runs it through bench/mw_variant.py instead;
    `source` is a directory holding another `middleware` package to run (an A/B against a saved copy)."""
    config = write_middleware_config(workdir, upstream_port)
    args = ["--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if variant:
        argv = [sys.executable, str(REPO / "bench" / "mw_variant.py"), *variant, "--", *args]
    else:
        argv = [sys.executable, "-m", "middleware", *args]
    env = None
    if source is not None:
        env = dict(os.environ, PYTHONPATH=f"{source}{os.pathsep}{REPO}", VLLM_BENCH_MIDDLEWARE_SOURCE=str(source))
    # `python -m` puts the working directory first on sys.path: run from `source` to import its package.
    program = spawn(name, argv, workdir, env, cwd=source or REPO)
    program.port, program.workers = port, workers
    if wait:
        program.ready()
    return program
