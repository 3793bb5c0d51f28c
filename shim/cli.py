"""`vllm` and `vllm-shim` entry points. main() is the only place with side effects: write the run dir, exec."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from shim import VLLM_COMPAT_VERSION, __version__
from shim.cpu_limit import pod_cpus
from shim.errors import CliError
from shim.help import serve_help, top_help
from shim.plan import Plan, redact
from shim.pod.stdio import ensure_reopenable_stdio
from shim.render import engine_secrets, render
from shim.translate import translate

VERSION_LINE = f"{VLLM_COMPAT_VERSION} (vllm-to-sglang {__version__}: SGLang behind a vLLM-compatible front)"
UNSUPPORTED = ("chat", "complete", "bench", "collect-env", "run-batch", "launch", "download-kernels", "preload")


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return CliError.exit_code


def _report(plan: Plan) -> None:
    for dropped in plan.dropped:
        print(f"vllm-shim: dropped {dropped.flag}: {dropped.reason}", file=sys.stderr)
    for warning in plan.warnings:
        print(f"vllm-shim: WARNING: {warning}", file=sys.stderr)
    program = " ".join(redact([*plan.engine_program, *plan.engine_args]))
    print(f"vllm-shim: engine: {program}", file=sys.stderr)


def run_files(plan: Plan, *, as_root: bool) -> dict[str, str]:
    """Everything the run dir holds, with a fresh internal engine key: one per start, never shown or logged."""
    return {**render(plan, as_root=as_root), **engine_secrets(plan, secrets.token_urlsafe(32))}


def write_run_dir(plan: Plan, files: dict[str, str]) -> Path:
    run_dir = Path(plan.run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, text in files.items():
            path = run_dir / name
            # Owner-only: middleware.json holds the user's keys, engine-secrets.json the engine's.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.chmod(path, 0o600)
    except OSError as exc:
        raise CliError(f"run directory {run_dir} is not writable ({exc.strerror}); set VLLM_SHIM_RUN_DIR") from None
    return run_dir


def supervisord_argv(python: str, conf: str) -> list[str]:
    """supervisord through shim/pod/supervise.py: stock but for a first poll that does not idle a second."""
    return [python, "-m", "shim.pod.supervise", "-n", "-c", conf]


def serve(argv: Sequence[str]) -> int:
    if any(arg in ("-h", "--help") or arg.startswith("--help=") for arg in argv):
        print(serve_help())
        return 0
    try:
        plan = translate(["serve", *argv], os.environ, cpus=pod_cpus())
        run_dir = write_run_dir(plan, run_files(plan, as_root=os.geteuid() == 0))
    except CliError as exc:
        return _fail("vllm serve", str(exc))
    _report(plan)
    conf = str(run_dir / "supervisord.conf")
    sys.stdout.flush()
    sys.stderr.flush()
    ensure_reopenable_stdio()
    os.execvp(plan.python, supervisord_argv(plan.python, conf))
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    # `vllm serve --help | head` must not end in a BrokenPipeError traceback.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(top_help())
        return 0
    if args[0] in ("-v", "--version"):
        print(VERSION_LINE)
        return 0
    if args[0] == "serve":
        return serve(args[1:])
    if args[0] in UNSUPPORTED:
        return _fail("vllm", f"'vllm {args[0]}' is not provided by vllm-to-sglang; only 'vllm serve' is")
    return _fail("vllm", f"argument subparser: invalid choice: {args[0]!r} (choose from 'serve')")


def shim_main(argv: Sequence[str] | None = None) -> int:
    """`vllm-shim translate -- ARGS` (the plan as JSON) and `vllm-shim render DIR -- ARGS` (write configs only)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-v"], ["--version"]):
        print(f"vllm-shim {__version__} (presents vLLM {VLLM_COMPAT_VERSION})")
        return 0
    if not args or args[0] not in ("translate", "render"):
        print("usage: vllm-shim translate -- <vllm arguments>\n       vllm-shim render DIR -- <vllm arguments>")
        return 0 if not args or args[0] in ("-h", "--help") else 2
    command, rest = args[0], args[1:]
    target = rest.pop(0) if command == "render" and rest and rest[0] != "--" else None
    vllm_args = rest[1:] if rest[:1] == ["--"] else rest
    try:
        environ = dict(os.environ, VLLM_SHIM_RUN_DIR=target) if target else os.environ
        plan = translate(vllm_args, environ, cpus=pod_cpus())
        if command == "translate":
            print(json.dumps(plan.summary(), indent=2))
            return 0
        write_run_dir(plan, run_files(plan, as_root=os.geteuid() == 0))
    except CliError as exc:
        return _fail(f"vllm-shim {command}", str(exc))
    print(plan.run_dir)
    return 0
