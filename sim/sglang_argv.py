"""SGLang's command line, rebuilt from `conf/sglang-flags.json`.

The parser accepts every real SGLang 0.5.23 option with its real arity, so a command line the shim renders is
rejected here exactly when real SGLang would reject it (unknown option or missing value: exit 2).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from shim.data_files import data_text

FLAGS_FILE = "sglang-flags.json"


def _flags_text() -> str:
    return data_text("shim.conf", FLAGS_FILE)


def human_readable_int(value: str) -> int:
    """SGLang's `32k` (= 32000) / `32Ki` (= 32768) spelling for token counts."""
    match = re.fullmatch(r"(\d+)(?:([kKmMgG])(i?))?", value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid int value: {value!r}")
    number, unit, binary = match.groups()
    if not unit:
        return int(number)
    power = "kmg".index(unit.lower()) + 1
    return int(number) * (1024 if binary else 1000) ** power


def _nullable_str(value: str) -> str | None:
    return None if value.lower() in ("", "none", "null") else value


_TYPES: dict[str | None, Callable[[str], Any] | None] = {
    None: None,
    "str": str,
    "int": int,
    "float": float,
    "human_readable_int": human_readable_int,
    "loads": json.loads,
    "json_list_type": json.loads,
    "nullable_str": _nullable_str,
}


def _add_flag(parser: argparse.ArgumentParser, flag: dict[str, Any]) -> None:
    opts: list[str] = flag["option_strings"]
    action: str = flag["action"]
    kwargs: dict[str, Any] = {"dest": flag["dest"], "default": flag["default"]}
    kwargs["help"] = (flag.get("help") or "").replace("%", "%%")
    if action == "BooleanOptionalAction":
        # argparse derives the --no- spelling itself; passing it too would be a conflict.
        parser.add_argument(*[o for o in opts if not o.startswith("--no-")], action=argparse.BooleanOptionalAction,
                            **kwargs)
        return
    if not flag["takes_value"]:
        parser.add_argument(*opts, action="store_true", **kwargs)
        return
    # LoRAPathAction and the odd deprecated store-const that takes a value are plain stores here; the items are
    # interpreted later (`parse_lora_paths`).
    kwargs["type"] = _TYPES.get(flag["type"], str)
    if flag["nargs"] is not None:
        kwargs["nargs"] = flag["nargs"]
    if flag["choices"] is not None:
        kwargs["choices"] = flag["choices"]
    if flag.get("required"):
        kwargs["required"] = True
    parser.add_argument(*opts, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    data = json.loads(_flags_text())
    parser = argparse.ArgumentParser(
        prog="python -m sim",
        description=f"Simulated SGLang {data['sglang_version']} server (a test double; no model is loaded).",
        allow_abbrev=False,
    )
    for flag in data["flags"]:
        _add_flag(parser, flag)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def explicit_options(args: argparse.Namespace) -> dict[str, Any]:
    """Options whose value differs from SGLang's default: what the command line actually asked for."""
    parser = build_parser()
    return {dest: value for dest, value in vars(args).items() if value != parser.get_default(dest)}


def parse_lora_paths(items: Sequence[str] | None) -> dict[str, str]:
    """`--lora-paths` items: `PATH`, `NAME=PATH` or JSON `{"lora_name", "lora_path", "pinned"}`."""
    adapters: dict[str, str] = {}
    for item in items or ():
        item = item.strip()
        if item.startswith("{"):
            spec = json.loads(item)
            adapters[spec["lora_name"]] = spec["lora_path"]
        elif "=" in item:
            name, path = item.split("=", 1)
            adapters[name] = path
        else:
            adapters[item] = item
    return adapters
