"""Run the engine as supervisord's child: name its log lines, drain before stopping, leave no orphans.

supervisord has no per-program log prefix and ties stop order to start order (haproxy starts first, so it
would stop last). This runner, started as the `engine` program, fixes both:
- every line the engine prints is prefixed with `[engine] `, so `kubectl logs` shows who speaks;
- on SIGTERM it first soft-stops haproxy (SIGUSR1: stop accepting, finish in-flight requests), waits for
  it up to the drain time, then stops the engine's whole process group, then kills what is left;
- when the engine exits by itself, its leftover children are killed and its exit status is passed on;
- with --secrets-file, the engine gets the file's path (SECRETS_ENV) and its environment variables (HF_TOKEN),
  never the user's VLLM_API_KEY, and every secret in the file is replaced by `***` in every line it prints.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from shim.pod.engine_launch import MIN_SCRUB_LENGTH, SECRETS_ENV, read_secrets, secret_values

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If the runner itself is SIGKILLed, the kernel stops the engine too: no orphan holds the GPU.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def pump(source: BinaryIO, sink: BinaryIO, prefix: bytes, secrets: Sequence[bytes] = ()) -> None:
    for line in iter(source.readline, b""):
        for secret in secrets:
            line = line.replace(secret, b"***")
        sink.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
        sink.flush()


def engine_environment(environ: Mapping[str, str], secrets_file: str | None) -> tuple[dict[str, str], list[bytes]]:
    """The engine's environment and the byte strings to scrub from its output.

    The user's key is the middleware's alone: SGLang is started with the internal key from the secrets file.
    """
    env = {k: v for k, v in environ.items() if k != "VLLM_API_KEY"}
    if not secrets_file:
        return env, []
    data = read_secrets(secrets_file)
    env.update({str(k): str(v) for k, v in dict(data.get("env") or {}).items()})
    env[SECRETS_ENV] = secrets_file
    user_key = environ.get("VLLM_API_KEY")
    values = [*secret_values(data), *([user_key] if user_key else [])]
    # A very short value (a test key "k") would blank every such letter of the log and hide nothing.
    return env, [v.encode() for v in values if len(v) >= MIN_SCRUB_LENGTH]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drain(pidfile: str | None, seconds: float, log: BinaryIO) -> None:
    """Soft-stop haproxy and wait until its in-flight requests are done (it exits) or the time is up."""
    if not pidfile or seconds <= 0:
        return
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().split()[0])
        os.kill(pid, signal.SIGUSR1)
    except (OSError, ValueError, IndexError) as exc:  # no haproxy to drain: say so, then stop the engine
        log.write(f"runner: not draining: haproxy pid from {pidfile}: {exc!r}\n".encode())
        log.flush()
        return
    log.write(f"runner: draining: haproxy soft-stopped, waiting up to {seconds:g}s for in-flight requests\n".encode())
    log.flush()
    deadline = time.monotonic() + seconds
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)


def stop_group(child: subprocess.Popen[bytes], seconds: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=seconds)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run(
    name: str,
    command: Sequence[str],
    pidfile: str | None,
    drain_seconds: float,
    stop_seconds: float,
    secrets_file: str | None = None,
) -> int:
    prefix = f"[{name}] ".encode()
    env, secrets = engine_environment(os.environ, secrets_file)
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_die_with_parent,
        env=env,
    )
    pumps = [
        threading.Thread(target=pump, args=(child.stdout, sys.stdout.buffer, prefix, secrets), daemon=True),
        threading.Thread(target=pump, args=(child.stderr, sys.stderr.buffer, prefix, secrets), daemon=True),
    ]
    for thread in pumps:
        thread.start()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, lambda *_: stopping.set())
    # Signals only set the flag: the stop sequence runs here, in order, not inside a signal handler.
    while child.poll() is None and not stopping.wait(0.2):
        pass
    if stopping.is_set() and child.poll() is None:
        drain(pidfile, drain_seconds, sys.stderr.buffer)
        stop_group(child, stop_seconds)
    returncode = child.wait()
    # The engine is gone; its workers (schedulers, detokenizer) must not outlive it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    for thread in pumps:
        thread.join(timeout=2)
    return 0 if stopping.is_set() else exit_status(returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--drain-pidfile")
    parser.add_argument("--drain-seconds", type=float, default=0)
    parser.add_argument("--stop-seconds", type=float, default=30)
    parser.add_argument("--secrets-file", help="the engine secrets file (JSON, 0600) written by `vllm serve`")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    return run(args.name, command, args.drain_pidfile, args.drain_seconds, args.stop_seconds, args.secrets_file)


if __name__ == "__main__":
    sys.exit(main())
