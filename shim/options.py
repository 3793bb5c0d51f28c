"""The vLLM `serve` option table (conf/vllm_options.json), indexed for the argv grammar."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from shim.data_files import load_data

Arity = Literal["flag", "one", "many", "optional", "append"]


@dataclass(frozen=True)
class Option:
    dest: str
    flags: tuple[str, ...]
    negations: tuple[str, ...]
    arity: Arity
    const: Any
    choices: tuple[str, ...] | None
    json: bool
    current: bool
    last_seen: str
    help: str

    @property
    def name(self) -> str:
        """The canonical spelling: the first long flag."""
        return next((f for f in self.flags if f.startswith("--")), self.flags[0])


@dataclass(frozen=True)
class Spelling:
    option: Option
    negated: bool


class OptionTable:
    def __init__(self, options: Iterable[Option]) -> None:
        self.options = {o.dest: o for o in options}
        self._spellings: dict[str, Spelling] = {}
        # Options still in the newest vLLM win a spelling clash with removed ones
        # (`--disable-log-requests` was its own flag, and is now `--enable-log-requests`' inverse).
        for opt in sorted(self.options.values(), key=lambda o: o.current):
            for flag in opt.flags:
                self._spellings[flag] = Spelling(opt, False)
            for flag in opt.negations:
                self._spellings[flag] = Spelling(opt, True)
        self._long = sorted(s for s in self._spellings if s.startswith("--"))

    def lookup(self, spelling: str) -> Spelling | None:
        return self._spellings.get(spelling)

    def abbreviations(self, prefix: str) -> list[str]:
        """Long spellings that start with `prefix` (argparse's allow_abbrev, which vLLM keeps on)."""
        return [s for s in self._long if s.startswith(prefix)]


def _option(raw: dict[str, Any]) -> Option:
    return Option(
        dest=raw["dest"],
        flags=tuple(raw["flags"]),
        negations=tuple(raw["negations"]),
        arity=raw["arity"],
        const=raw.get("const"),
        choices=tuple(str(c) for c in raw["choices"]) if raw.get("choices") else None,
        json=bool(raw.get("json")),
        current=bool(raw.get("current")),
        last_seen=raw.get("last_seen") or "",
        help=raw.get("help") or "",
    )


@cache
def vllm_options() -> OptionTable:
    return OptionTable(_option(o) for o in load_data("vllm_options.json")["options"])
