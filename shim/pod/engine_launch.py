"""Start SGLang as `python -m sglang.launch_server` does, with the engine key kept off argv and out of logs.

SGLang reads `--api-key` only from its command line (no environment variable), and logs its whole ServerArgs
at INFO on start (`server_args={...}`, only watermark fields hidden), so a key given the usual way sits in
/proc/*/cmdline and in the pod log. This launcher runs SGLang's own steps (load_plugins, prepare_server_args,
run_server, kill_process_tree: the `__main__` block of sglang/launch_server.py, checked by a contract test),
and between parsing and launch sets `server_args.api_key` from the engine secrets file (0600, in the run
dir, written by `vllm serve`). Before SGLang logs anything, a log-record factory replaces the key in every
record of this process; the engine wrapper (shim/pod/engine_wrapper.py) scrubs every output line of every engine process
as a second net.

Standalone on purpose (stdlib only until SGLang is imported): it runs in SGLang's interpreter.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

# The engine wrapper points the engine at its secrets file with this variable (a path, not a secret).
SECRETS_ENV = "VLLM_SHIM_ENGINE_SECRETS"
REDACTED = "***"
MIN_SCRUB_LENGTH = 8
# sglang/launch_server.py's `__main__` block, in order: the contract test compares it with the installed one.
SGLANG_MAIN_CALLS = ("load_plugins", "prepare_server_args", "run_server", "kill_process_tree")


def read_secrets(path: str) -> dict[str, Any]:
    """The engine secrets file: {"api_key": KEY, "env": {NAME: VALUE}}. Missing or malformed: fail to start."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or not isinstance(data.get("api_key"), str) or not data["api_key"]:
        raise ValueError(f"{path}: no engine api_key")
    return data


def secret_values(data: dict[str, Any]) -> tuple[str, ...]:
    """The file's secrets worth scrubbing: a very short value would blank every such letter and hide nothing."""
    values = (data["api_key"], *dict(data.get("env") or {}).values())
    return tuple(v for v in values if isinstance(v, str) and len(v) >= MIN_SCRUB_LENGTH)


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def install_log_scrubber(secrets: Sequence[str]) -> None:
    """Every log record made in this process, whatever logger or handler SGLang sets up later, loses the secrets."""
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if isinstance(record.msg, str) and any(s in record.msg for s in secrets):
            record.msg = scrub(record.msg, secrets)
        if record.args and any(s in repr(record.args) for s in secrets):
            # Format now, then scrub: the secret may sit in any argument, at any depth.
            record.msg, record.args = scrub(record.getMessage(), secrets), None
        return record

    logging.setLogRecordFactory(factory)


def engine_key_from_env(environ: Mapping[str, str] = os.environ) -> tuple[str, tuple[str, ...]]:
    """(engine key, every secret to scrub), from the file the engine wrapper names; logs are scrubbed from here on."""
    path = environ.get(SECRETS_ENV)
    if not path:
        raise SystemExit(f"engine_launch: {SECRETS_ENV} is not set (the engine wrapper sets it)")
    data = read_secrets(path)
    secrets = secret_values(data)
    install_log_scrubber(secrets)
    return data["api_key"], secrets


def main(argv: Sequence[str] | None = None) -> None:
    key, _ = engine_key_from_env()
    from sglang.launch_server import run_server
    from sglang.srt.plugins import load_plugins
    from sglang.srt.server_args import prepare_server_args
    from sglang.srt.utils import kill_process_tree

    load_plugins()
    server_args = prepare_server_args(list(sys.argv[1:] if argv is None else argv))
    # Before resolve_once() seals the record (run_server calls it): the same place `--api-key` would land.
    server_args.api_key = key
    try:
        run_server(server_args)
    finally:
        kill_process_tree(os.getpid(), include_parent=False)


if __name__ == "__main__":
    main()
