"""The translation table (conf/rules.yaml) as typed rows, and how a map/drop/reject row is applied."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from shim.data_files import load_data
from shim.errors import CliError
from shim.transforms import TRANSFORMS

Action = Literal["map", "plan", "drop", "reject"]


@dataclass(frozen=True)
class FlagRule:
    dest: str
    action: Action
    flags: tuple[str, ...] = ()  # map: the SGLang flag(s)
    transform: str = "str"  # map: a TRANSFORMS name
    handler: str = ""  # plan: which plan step decides it
    text: str = ""  # drop: the reason; reject: the message; plan: what the step does
    warn: bool = False  # drop: also a warning (the user loses something they asked for)


@dataclass(frozen=True)
class Outcome:
    args: tuple[str, ...] = ()
    dropped: str | None = None
    warning: str | None = None


ACTIONS: tuple[Action, ...] = ("map", "plan", "drop", "reject")


def _rule(dest: str, row: dict[str, Any]) -> FlagRule:
    actions = [a for a in ACTIONS if a in row]
    if len(actions) > 1:
        raise ValueError(f"conf/rules.yaml: row {dest!r} has more than one action: {', '.join(actions)}")
    if "map" in row:
        target = row["map"]
        flags = tuple(target) if isinstance(target, list) else (target,)
        return FlagRule(dest, "map", flags=flags, transform=row.get("value", "str"))
    if "plan" in row:
        return FlagRule(dest, "plan", handler=row["plan"], text=row.get("doc", ""))
    if "drop" in row:
        return FlagRule(dest, "drop", text=row["drop"], warn=bool(row.get("warn")))
    if "reject" in row:
        return FlagRule(dest, "reject", text=row["reject"])
    raise ValueError(f"conf/rules.yaml: row {dest!r} has no action")


@cache
def rules() -> dict[str, FlagRule]:
    raw = load_data("rules.yaml")
    return {dest: _rule(dest, row) for dest, row in raw.items()}


def apply(rule: FlagRule, value: Any, spelled: str) -> Outcome:
    """A map/drop/reject row applied to one parsed value; plan rows are decided by translate()."""
    if rule.action == "reject":
        raise CliError(f"argument {spelled}: {rule.text}")
    if rule.action == "drop":
        return Outcome(dropped=rule.text, warning=f"{spelled} ignored: {rule.text}" if rule.warn else None)
    if rule.action == "map":
        transform = TRANSFORMS[rule.transform]
        return Outcome(args=tuple(arg for flag in rule.flags for arg in transform(value, flag, spelled)))
    return Outcome()
