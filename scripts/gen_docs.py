#!/usr/bin/env python3
"""Regenerate the tables in docs/flags.md and docs/environment.md from the code (conf/, shim/env.py).

    scripts/gen_docs.py          rewrite the files
    scripts/gen_docs.py --check  exit 1 if a file is out of date (the test suite runs this)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Document this checkout's code, not whichever `shim` an installed (possibly editable, other) copy provides.
sys.path.insert(0, str(ROOT))

from shim.env import ENV_VARS  # noqa: E402
from shim.options import vllm_options  # noqa: E402
from shim.rules import FlagRule, rules  # noqa: E402


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


def flag_table() -> str:
    table = vllm_options()
    rows = ["| vLLM option | SGLang gets |", "|---|---|"]
    for dest, rule in sorted(rules().items(), key=lambda item: table.options[item[0]].name):
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
    env = ROOT / "docs" / "environment.md"
    flags = ROOT / "docs" / "flags.md"
    return {
        env: _splice(env.read_text(), "ENV", env_table()),
        flags: _splice(flags.read_text(), "ALLFLAGS", flag_table()),
    }


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
