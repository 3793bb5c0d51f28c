#!/usr/bin/env python3
"""Regenerate the tables in README.md and docs/flags.md from the code (env table, flag translation table).

    scripts/gen_docs.py          rewrite the files
    scripts/gen_docs.py --check  exit 1 if a file is out of date (the test suite runs this)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from shim.env import ENV_VARS
from shim.options import vllm_options
from shim.rules import FlagRule, rules

ROOT = Path(__file__).resolve().parents[1]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def env_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for var in ENV_VARS:
        default = "" if var.default in (None, ()) else f"`{var.default}`"
        rows.append(f"| `{var.name}` | {default} | {_cell(var.doc)} |")
    return "\n".join(rows)


def _what(rule: FlagRule) -> str:
    if rule.action == "map":
        value = "" if rule.transform in ("str", "flag") else f" ({rule.transform})"
        return " ".join(f"`{f}`" for f in rule.flags) + value
    if rule.action == "plan":
        return _cell(rule.text) or f"decided by the plan (`{rule.handler}`)"
    if rule.action == "reject":
        return f"**rejected** (exit 2): {_cell(rule.text)}"
    return ("**dropped with a warning**: " if rule.warn else "dropped: ") + _cell(rule.text)


def flag_table(include: set[str] | None = None) -> str:
    table = vllm_options()
    rows = ["| vLLM option | SGLang gets |", "|---|---|"]
    for dest, rule in sorted(rules().items(), key=lambda item: table.options[item[0]].name):
        if include is not None and rule.action not in include:
            continue
        option = table.options[dest]
        spellings = ", ".join(f"`{f}`" for f in (*option.flags, *option.negations))
        removed = "" if option.current else f" (vLLM ≤ {option.last_seen})"
        rows.append(f"| {spellings}{removed} | {_what(rule)} |")
    return "\n".join(rows)


def _splice(text: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- BEGIN {name} -->\n)(?:.*?\n)?(<!-- END {name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"marker {name} missing")
    return pattern.sub(lambda m: m.group(1) + content + "\n" + m.group(2), text)


def generated() -> dict[Path, str]:
    readme = (ROOT / "README.md").read_text()
    readme = _splice(readme, "ENV", env_table())
    readme = _splice(readme, "FLAGS", flag_table({"map", "plan", "reject"}))
    flags = (ROOT / "docs" / "flags.md").read_text()
    flags = _splice(flags, "ALLFLAGS", flag_table())
    return {ROOT / "README.md": readme, ROOT / "docs" / "flags.md": flags}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for path, text in generated().items():
        if path.read_text() != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    if args.check and stale:
        print("out of date (run scripts/gen_docs.py): " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
