"""supervisord event listener: take the whole pod down when a program cannot be kept running.

Policy: the engine exiting unexpectedly, or any program going FATAL (it could not start, e.g. its port is
taken), stops supervisord so Kubernetes restarts the pod with the reason in `kubectl logs --previous`.
haproxy and the middleware exiting is left to supervisord, which restarts them in place, unless one keeps
crashing (CRASH_LOOP exits within CRASH_WINDOW seconds): a program that outlives `startsecs` and then dies
(e.g. its port is taken after a slow import) never goes FATAL, and would otherwise loop forever.
Protocol (supervisor docs, events.rst): READY on stdout, a header line, a payload, then RESULT on stdout.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import TextIO

CRASH_LOOP = 4
CRASH_WINDOW = 60.0


def parse_tokens(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split() if ":" in token)


class Policy:
    def __init__(self, critical: frozenset[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.critical = critical
        self.clock = clock
        self.exits: defaultdict[str, deque[float]] = defaultdict(lambda: deque(maxlen=CRASH_LOOP))

    def decide(self, event: str, payload: dict[str, str]) -> str | None:
        """Why the pod must go down, or None."""
        name = payload.get("processname", "?")
        if event == "PROCESS_STATE_FATAL":
            return f"{name} could not be started (FATAL after its start retries); shutting down the pod"
        if event != "PROCESS_STATE_EXITED" or payload.get("expected") != "0":
            return None
        if name in self.critical:
            return f"{name} died (exited unexpectedly from {payload.get('from_state', '?')}); shutting down the pod"
        exits = self.exits[name]
        exits.append(self.clock())
        if len(exits) == CRASH_LOOP and exits[-1] - exits[0] <= CRASH_WINDOW:
            return f"{name} keeps crashing ({CRASH_LOOP} exits in {exits[-1] - exits[0]:.0f}s); shutting down the pod"
        return None


def serve(policy: Policy, stdin: TextIO, stdout: TextIO, stderr: TextIO, supervisord_pid: int) -> None:
    while True:
        stdout.write("READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return
        header = parse_tokens(header_line)
        body = stdin.read(int(header.get("len", "0")))
        reason = policy.decide(header.get("eventname", ""), parse_tokens(body.split("\n", 1)[0]))
        if reason:
            stderr.write(f"vllm-shim failfast: {reason}\n")
            stderr.flush()
            os.kill(supervisord_pid, signal.SIGTERM)
        stdout.write("RESULT 2\nOK")
        stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--critical", action="append", default=[], help="program whose unexpected exit ends the pod")
    args = parser.parse_args(argv)
    serve(Policy(frozenset(args.critical)), sys.stdin, sys.stdout, sys.stderr, os.getppid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
