#!/usr/bin/env python3
"""Runs INSIDE the SGLang venv: what SGLang's own code does with the shim's engine arguments and words.

One JSON request on stdin, one JSON answer on stdout (SGLang's own output goes to stderr):
    {"op": "log_line", "argv": [...], "launcher": PATH, "key": K}
        SGLang's start-up `server_args=` line for `argv`, made as sglang/srt/entrypoints/engine.py makes it
        (`_server_args_for_logging`: redact_watermark_secrets(server_args.resolved_dict())), first as SGLang
        alone would print it (`plain`), then with the launcher's key and log scrubber (`launched`), plus
        what /server_info would report as `launch_command`.
    {"op": "resolve", "words": [...]}
        for each word, what SGLang's parser does with it: the destinations it sets, or its error.
    {"op": "sources"}
        the calls in sglang/launch_server.py's `__main__` block and engine.py's server_args log statements.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

LOGGER = "sglang.srt.entrypoints.engine"


def _log_line(server_args: Any) -> str:
    from sglang.srt.sampling.watermarking.core import redact_watermark_secrets

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        # The statement of engine.py, verbatim but for the helper it calls (checked by `sources`).
        logging.getLogger(LOGGER).info(f"server_args={redact_watermark_secrets(server_args.resolved_dict())}")
    finally:
        logging.getLogger().removeHandler(handler)
    return stream.getvalue()


def log_line(argv: list[str], launcher: str, key: str) -> dict[str, str]:
    from sglang.srt.server_args import prepare_server_args

    plain = _log_line(prepare_server_args(argv))
    spec = importlib.util.spec_from_file_location("engine_launch", launcher)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install_log_scrubber([key])  # as engine_key_from_env does, before SGLang logs anything
    server_args = prepare_server_args(argv)
    server_args.api_key = key  # as the launcher does, between parsing and run_server
    return {"plain": plain, "launched": _log_line(server_args), "launch_command": str(server_args.launch_command),
            "api_key": str(server_args.api_key)}  # fmt: skip


class _Refused(Exception):
    pass


def resolve(words: list[str]) -> list[dict[str, Any]]:
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(prog="sglang serve")  # as prepare_server_args builds it
    ServerArgs.add_cli_args(parser)

    def error(message: str) -> None:
        raise _Refused(message)

    parser.error = error  # type: ignore[method-assign]
    unset = object()
    dests = {action.dest for action in parser._actions}
    answers = []
    for word in words:
        # Every destination starts as `unset`: argparse then fills in no default, so what changed is what the
        # word set, even when it set a default value.
        namespace = argparse.Namespace(**dict.fromkeys(dests, unset))
        try:
            parser.parse_known_args(["--model-path", "M0", word, "7"], namespace=namespace)
        except _Refused as exc:
            answers.append({"word": word, "error": str(exc)})
            continue
        except SystemExit as exc:  # --help: argparse prints the help and exits
            answers.append({"word": word, "exit": exc.code})
            continue
        changed = sorted(k for k, v in vars(namespace).items() if v is not unset and k != "model_path")
        if namespace.model_path != "M0":
            changed.append("model_path")
        answers.append({"word": word, "dests": changed})
    return answers


def sources() -> dict[str, Any]:
    import sglang.launch_server as launch

    tree = ast.parse(Path(launch.__file__).read_text())
    calls: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call):
                    calls.append(ast.unparse(sub.func))
    engine = (Path(launch.__file__).parent / "srt" / "entrypoints" / "engine.py").read_text()
    helper = [ast.unparse(node.body[-1]) for node in ast.parse(engine).body
              if isinstance(node, ast.FunctionDef) and node.name == "_server_args_for_logging"]  # fmt: skip
    return {"main_calls": calls, "log_statements": re.findall(r"logger\.\w+\(f?\"server_args=.*", engine),
            "helper": helper}  # fmt: skip


def main() -> None:
    request = json.loads(sys.stdin.read())
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    op = request["op"]
    if op == "log_line":
        answer: Any = log_line(request["argv"], request["launcher"], request["key"])
    elif op == "resolve":
        answer = resolve(request["words"])
    else:
        answer = sources()
    real_stdout.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
