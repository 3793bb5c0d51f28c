"""supervisord as the pod's PID 1: stock supervisord, except that its first poll does not wait.

    python -m shim.pod.supervise -n -c RUN_DIR/supervisord.conf      (what `vllm serve` execs)

supervisord 4.3's main loop (`Supervisor.runforever`) polls its sockets with a 1 s timeout *before* its first
`transition()`, and that transition is what spawns the autostart programs: every pod start would idle one
second before haproxy exists. Here the first `poll()` of each poller is made non-blocking; every later poll
keeps the timeout supervisord asks for, so ticks, signals and `supervisorctl` (the unix socket in the run dir)
behave as in stock supervisord.

The patch leans on two things supervisord does not promise: `ServerOptions` builds its poller from
`supervisor.poller.Poller`, and `Poller.poll(self, timeout)` is the one blocking call. Both are checked before
anything starts, and again on the poller supervisord actually built, so a supervisord that changed either exits
with a reason instead of running unpatched (and one second slower) without a word.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from typing import Any

from supervisor import poller, supervisord

PINNED = "4.3.0"  # pyproject.toml's supervisor pin, named in the error when the API moved


class SupervisordMismatch(RuntimeError):
    """The installed supervisord's poller API is not the one the first-poll patch was written against."""


def _version() -> str:
    from supervisor.options import VERSION  # supervisord's own idea of its version, as `supervisord -v` prints

    return str(VERSION)


def _mismatch(what: str) -> SupervisordMismatch:
    return SupervisordMismatch(
        f"supervisord {_version()} (pinned: {PINNED}) is not what shim/pod/supervise.py's first-poll patch was "
        f"written for: {what}"
    )


def _parameters(func: Any) -> list[str]:
    try:
        return list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return []


def check_api() -> None:
    """The attributes the patch replaces exist with the shapes it assumes, or SupervisordMismatch."""
    base = getattr(poller, "Poller", None)
    if not inspect.isclass(base) or not issubclass(base, poller.BasePoller):
        raise _mismatch("supervisor.poller.Poller is not a BasePoller class")
    taken = _parameters(getattr(base, "poll", None))
    if taken != ["self", "timeout"]:
        raise _mismatch(f"Poller.poll takes {taken}, not (self, timeout)")
    if _parameters(getattr(supervisord, "go", None)) != ["options"]:
        raise _mismatch("supervisor.supervisord.go(options) is gone")
    if not callable(getattr(supervisord, "main", None)):
        raise _mismatch("supervisor.supervisord.main is gone")


def first_poll_immediate(base: Any) -> Any:
    """A subclass of `base` whose first poll() per instance does not block; later ones keep their timeout."""

    class FirstPollImmediate(base):
        _polled = False

        def poll(self, timeout: float) -> Any:
            if not self._polled:
                # The first poll precedes the first transition(), which spawns the programs.
                self._polled = True
                timeout = 0
            return super().poll(timeout)

    FirstPollImmediate.__qualname__ = f"FirstPollImmediate[{base.__name__}]"
    return FirstPollImmediate


def install() -> type:
    """Patch supervisord in this process; returns the poller class it will now build."""
    check_api()
    patched: type = first_poll_immediate(poller.Poller)
    stock_go = supervisord.go

    def go(options: Any) -> None:
        # Each (re)start builds a new ServerOptions; if it stopped building its poller from poller.Poller,
        # the patch would silently not apply.
        if not isinstance(options.poller, patched):
            raise _mismatch(f"ServerOptions built a {type(options.poller).__name__}, not supervisor.poller.Poller")
        stock_go(options)

    poller.Poller = patched
    supervisord.go = go
    return patched


def main(argv: Sequence[str] | None = None) -> int:
    try:
        install()
        supervisord.main(args=list(sys.argv[1:] if argv is None else argv))
    except SupervisordMismatch as exc:
        print(f"vllm-shim: {exc}", file=sys.stderr)
        return 70  # EX_SOFTWARE: the image's supervisord is not the one this shim was built with
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
