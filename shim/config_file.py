"""`--config file.yaml`, expanded the way vLLM's `_pull_args_from_config` does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from shim.errors import CliError
from shim.options import vllm_options


def _config_path(tokens: list[str]) -> tuple[str | None, list[str]]:
    rest: list[str] = []
    path: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--config" or token.startswith("--config="):
            if path is not None:
                raise CliError("argument --config: only one --config file is allowed")
            if token == "--config":
                if i + 1 >= len(tokens):
                    raise CliError("argument --config: expected one argument")
                path, i = tokens[i + 1], i + 2
                continue
            path = token.partition("=")[2]
        else:
            rest.append(token)
        i += 1
    return path, rest


def _to_tokens(key: str, value: Any) -> list[str]:
    flag = "--" + str(key)
    if value is True:
        return [flag]
    if value is False:
        # vLLM emits --no-key only when that spelling exists; the grammar rejects it otherwise, so check here.
        negated = "--no-" + str(key).replace("_", "-")
        return [negated] if vllm_options().lookup(negated) else []
    if isinstance(value, list):
        return [flag, *(str(v) for v in value)]
    if isinstance(value, dict):
        return [flag, json.dumps(value)]
    return [flag, str(value)]


def config_file_args(tokens: list[str]) -> list[str]:
    """Replace `--config F` by F's options, placed before the command-line ones so the command line wins.
    The file's keys come back as written (`max_model_len`); the caller normalizes them with the rest."""
    path, rest = _config_path(tokens)
    if path is None:
        return tokens
    if not path.endswith((".yaml", ".yml")):
        raise CliError(f"argument --config: config file must be a .yaml or .yml file, got {path!r}")
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"argument --config: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"argument --config: {path} must hold a mapping of option names to values")
    expanded = [t for key, value in data.items() for t in _to_tokens(key, value)]
    return expanded + rest
