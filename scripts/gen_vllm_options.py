#!/usr/bin/env python3
"""Regenerate conf/vllm_options.json, the vLLM `serve` grammar the shim accepts.

Two sources:
  --from-installed          the parser of the vLLM installed in this interpreter (one version)
  --from-reference FILE     a multi-version dump (shared/reference/vllm-flags.json: 0.6 .. 0.33)
The output keeps only what the grammar needs: spellings, arity, choices, JSON-ness, and which
versions had the option, so translate rules can tell "removed in 0.12" from "unknown".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "conf" / "vllm_options.json"
JSON_TYPES = {"parse_dataclass", "loads", "union_dict_and_str"}


def _negations(flags: list[str]) -> list[str]:
    first = flags[0]
    stem = first[2:]
    swapped = {"enable-": "disable-", "disable-": "enable-"}
    neg = {"--no-" + stem}
    for a, b in swapped.items():
        if stem.startswith(a):
            neg.add("--" + b + stem[len(a) :])
    return [f for f in flags if f in neg]


def _arity(entry: dict[str, Any]) -> str:
    by_version = entry.get("arity_by_version") or {}
    nargs, action = entry.get("nargs"), entry.get("action", "")
    if action == "_AppendAction":
        return "append"
    if nargs == "+" or "nargs=+" in by_version:
        return "many"
    if nargs == "?" or "nargs=?" in by_version:
        # old StoreBoolean flags took an optional true|false; new ones are plain flags
        return "optional"
    if nargs == 0 or not entry.get("takes_value", True):
        return "optional" if "value" in by_version else "flag"
    return "one"


def convert(entry: dict[str, Any]) -> dict[str, Any] | None:
    if entry.get("positional") or entry["dest"] in ("help",):
        return None
    flags = list(entry["flags"])
    negations = _negations(flags) if _arity(entry) in ("flag", "optional") and len(flags) > 1 else []
    return {
        "dest": entry["dest"],
        "flags": [f for f in flags if f not in negations],
        "negations": negations,
        "arity": _arity(entry),
        "const": entry.get("const"),
        "choices": entry.get("choices"),
        "json": entry.get("type") in JSON_TYPES,
        "current": bool(entry.get("in_0_33_0")),
        "first_seen": entry.get("first_seen"),
        "last_seen": entry.get("last_seen"),
        "help": entry.get("help_first_line") or "",
    }


def from_reference(path: Path) -> list[dict[str, Any]]:
    return [o for o in (convert(e) for e in json.loads(path.read_text())) if o]


def from_installed() -> list[dict[str, Any]]:  # pragma: no cover - needs a real vLLM
    from vllm.entrypoints.openai.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    from vllm import __version__

    parser = make_arg_parser(FlexibleArgumentParser())
    entries = []
    for act in parser._actions:
        if not act.option_strings:
            continue
        entries.append(
            {
                "flags": list(act.option_strings),
                "dest": act.dest,
                "takes_value": act.nargs != 0,
                "nargs": act.nargs,
                "const": act.const if isinstance(act.const, (str, int, float, bool)) else None,
                "action": type(act).__name__,
                "type": getattr(act.type, "__name__", None),
                "choices": list(act.choices) if act.choices else None,
                "in_0_33_0": True,
                "first_seen": __version__,
                "last_seen": __version__,
                "help_first_line": (act.help or "").split("\n")[0],
            }
        )
    return [o for o in (convert(e) for e in entries) if o]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-installed", action="store_true")
    src.add_argument("--from-reference", type=Path)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    options = from_installed() if args.from_installed else from_reference(args.from_reference)
    source = "installed vllm" if args.from_installed else args.from_reference.name
    doc = {"source": source, "count": len(options), "options": sorted(options, key=lambda o: o["dest"])}
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(options)} options to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
