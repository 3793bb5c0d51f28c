"""Value transforms named in conf/rules.yaml: (vLLM value, SGLang flag) → SGLang tokens, or a CliError."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from shim.data_files import load_data
from shim.errors import CliError

Transform = Callable[[Any, str, str], list[str]]
_HUMAN = re.compile(r"^(\d+(?:\.\d+)?)([kKmMgGtT]?)$")
_UNITS = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@cache
def sglang_choices(flag: str) -> tuple[str, ...] | None:
    for entry in load_data("sglang-flags.json")["flags"]:
        if flag in entry["option_strings"]:
            return tuple(str(c) for c in entry["choices"]) if entry.get("choices") else None
    raise KeyError(flag)


def parse_int(value: Any, spelled: str) -> int:
    """An int as vLLM and Helm write it: `4096`, and Helm's float rendering `1.048576e+06`."""
    try:
        number = float(str(value))
    except ValueError:
        raise CliError(f"argument {spelled}: invalid int value: {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise CliError(f"argument {spelled}: invalid int value: {value!r}")
    return int(number)


def parse_json_object(raw: Any, spelled: str) -> dict[str, Any]:
    """A JSON-object option (`--kv-transfer-config`, `--speculative-config`): a string from the command line,
    or already a mapping when it came from a --config file or dotted keys."""
    try:
        config = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (ValueError, TypeError):
        raise CliError(f"argument {spelled}: invalid JSON value: {raw!r}") from None
    if not isinstance(config, dict):
        raise CliError(f"argument {spelled}: expected a JSON object")
    return config


def parse_human_int(value: Any, spelled: str) -> int | None:
    """vLLM's human-readable ints: 32k = 32000, 32K = 32768; -1 and `auto` mean "from the model" (None)."""
    text = str(value).strip()
    if text.lower() in ("auto", "-1"):
        return None
    match = _HUMAN.match(text)
    if not match:
        return parse_int(text, spelled)
    number, unit = float(match.group(1)), match.group(2)
    result = number * _UNITS.get(unit, 1)
    if result != int(result):
        raise CliError(f"argument {spelled}: invalid human-readable int: {value!r}")
    return int(result)


def _str(value: Any, flag: str, spelled: str) -> list[str]:
    return [flag, str(value)]


def _int(value: Any, flag: str, spelled: str) -> list[str]:
    return [flag, str(parse_int(value, spelled))]


def _human_int(value: Any, flag: str, spelled: str) -> list[str]:
    number = parse_human_int(value, spelled)
    return [] if number is None else [flag, str(number)]


def _fraction(value: Any, flag: str, spelled: str) -> list[str]:
    try:
        number = float(value)
    except ValueError:
        raise CliError(f"argument {spelled}: invalid float value: {value!r}") from None
    if not 0 < number <= 1:
        raise CliError(f"argument {spelled}: must be in (0, 1], got {value}")
    return [flag, repr(number)]


def _flag(value: Any, flag: str, spelled: str) -> list[str]:
    return [flag] if value else []


def _flag_if_false(value: Any, flag: str, spelled: str) -> list[str]:
    return [] if value else [flag]


def _many(value: Any, flag: str, spelled: str) -> list[str]:
    return [flag, *(value if isinstance(value, list) else [value])]


def _json(value: Any, flag: str, spelled: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise CliError(f"argument {spelled}: invalid JSON value: {value!r}") from None
    return [flag, json.dumps(value, separators=(",", ":"))]


def _path(value: Any, flag: str, spelled: str) -> list[str]:
    # The production-stack chart prefixes "/templates/" to a value that may already be absolute
    # ("/templates//templates/x.jinja"): the absolute part after "//" is the file meant.
    head, sep, tail = str(value).partition("//")
    if sep and ("/" + tail).startswith(head.rstrip("/") + "/"):
        return [flag, re.sub(r"/{2,}", "/", "/" + tail)]
    return [flag, re.sub(r"/{2,}", "/", str(value))]


def _sglang_choice(value: Any, flag: str, spelled: str, aliases: dict[str, str] | None = None) -> list[str]:
    text = (aliases or {}).get(str(value), str(value))
    choices = sglang_choices(flag)
    if choices is not None and text not in choices:
        raise CliError(f"argument {spelled}: {value!r} is not supported by SGLang (choose from {', '.join(choices)})")
    return [flag, text]


def _kv_cache_dtype(value: Any, flag: str, spelled: str) -> list[str]:
    # SGLang has no plain fp8: vLLM's fp8 means e4m3 on CUDA.
    return _sglang_choice(value, flag, spelled, {"fp8": "fp8_e4m3", "fp8_inc": "fp8_e4m3"})


def _tokenizer_mode(value: Any, flag: str, spelled: str) -> list[str]:
    # SGLang has no mistral tokenizer mode; the model's HF tokenizer is used instead.
    return [] if value == "mistral" else _sglang_choice(value, flag, spelled)


def _generation_config(value: Any, flag: str, spelled: str) -> list[str]:
    if value == "vllm":
        return [flag, "openai"]
    if value == "auto":
        return [flag, "model"]
    raise CliError(f"argument {spelled}: only 'auto' and 'vllm' are supported with SGLang, got {value!r}")


def _if_priority(value: Any, flag: str, spelled: str) -> list[str]:
    # fcfs is SGLang's default; vLLM's priority serves lower `priority` values first (SGLang: with the second flag).
    return [flag] if value == "priority" else []


def _otlp_endpoint(value: Any, flag: str, spelled: str) -> list[str]:
    # vLLM takes a URL (grpc://host:4317, http://host:4317); SGLang's collector address is host:port.
    address = re.sub(r"^[a-z]+://", "", str(value)).rstrip("/")
    return ["--enable-trace", flag, address]


TRANSFORMS: dict[str, Transform] = {
    "str": _str,
    "int": _int,
    "human_int": _human_int,
    "fraction": _fraction,
    "flag": _flag,
    "flag_if_false": _flag_if_false,
    "many": _many,
    "json": _json,
    "path": _path,
    "sglang_choice": _sglang_choice,
    "kv_cache_dtype": _kv_cache_dtype,
    "tokenizer_mode": _tokenizer_mode,
    "generation_config": _generation_config,
    "if_priority": _if_priority,
    "otlp_endpoint": _otlp_endpoint,
}
