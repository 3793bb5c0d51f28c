"""vLLM's `serve` command-line grammar, as FlexibleArgumentParser accepts it, reduced to canonical values.

Spellings handled: `--a_b` ≡ `--a-b` (also in `--a_b=v`; only the key part before the first `.` is rewritten),
`--flag=value`, `--no-flag` / `--disable-x` inverses, nargs `+`/`?`, short forms (`-tp 2`, `-tp=2`, `-q`,
`-O3`), unique prefixes (argparse's allow_abbrev), dotted JSON keys (`--compilation-config.mode 3`,
`--x.key+ a`), the model as positional or `--model`, and `--config file.yaml`.
Nothing here knows about SGLang: the output is what vLLM's own parser would have produced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shim.config_file import config_file_args
from shim.errors import CliError
from shim.options import Option, OptionTable, vllm_options

_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
_BOOL_WORDS = {"true": True, "false": False}


@dataclass
class ParsedArgs:
    """What vLLM's parser would hold: option dest → value, plus the spelling the user wrote (for messages)."""

    model: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    spelled: dict[str, str] = field(default_factory=dict)

    def get(self, dest: str, default: Any = None) -> Any:
        return self.values.get(dest, default)


def normalize(token: str) -> str:
    """`--max_model_len=4k` → `--max-model-len=4k`; `--hf_overrides.rope_scaling` keeps the part after the dot."""
    if not token.startswith("--"):
        return token
    key, eq, value = token.partition("=")
    head, dot, tail = key.partition(".")
    return head.replace("_", "-") + dot + tail + eq + value


def _looks_like_option(token: str) -> bool:
    return token.startswith("-") and token != "-" and not _NEGATIVE_NUMBER.match(token)


class _Parser:
    def __init__(self, table: OptionTable, tokens: list[str]) -> None:
        self.table = table
        self.tokens = tokens
        self.pos = 0
        self.out = ParsedArgs()
        self.positionals: list[str] = []

    def run(self) -> ParsedArgs:
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            if token == "--":
                self.positionals.extend(self.tokens[self.pos :])
                break
            if _looks_like_option(token):
                self._option(token)
            else:
                self.positionals.append(token)
        self._positionals()
        return self.out

    def _positionals(self) -> None:
        if len(self.positionals) > 1:
            raise CliError(f"unrecognized arguments: {' '.join(self.positionals[1:])}")
        if self.positionals:
            self.out.model = self.positionals[0]

    def _option(self, token: str) -> None:
        key, eq, inline = token.partition("=")
        value = inline if eq else None
        if key.startswith("-O"):
            self._optimization_level(token)
            return
        base, dot, path = key.partition(".")
        spelling = self._resolve(base)
        option = spelling.option
        if dot:
            self._dotted(option, base, path, value)
            return
        parsed = self._value(option, base, value, spelling.negated)
        self._store(option, base, parsed)

    def _optimization_level(self, token: str) -> None:
        # vLLM 0.33: -O3, -O=3, -O 3 and -Odecode all mean --optimization-level.
        rest = token[2:].lstrip("=")
        if not rest:
            rest = self._take_one("-O")
        option = self.table.lookup("--optimization-level")
        if option is not None:
            self._store(option.option, "-O", rest)

    def _resolve(self, key: str) -> Any:
        spelling = self.table.lookup(key)
        if spelling is not None:
            return spelling
        if key.startswith("--"):
            matches = self.table.abbreviations(key)
            if len(matches) == 1:
                return self.table.lookup(matches[0])
            if len(matches) > 1:
                raise CliError(f"ambiguous option: {key} could match {', '.join(matches)}")
        raise CliError(f"unrecognized arguments: {key}")

    def _value(self, option: Option, key: str, inline: str | None, negated: bool) -> Any:
        arity = option.arity
        if arity == "flag":
            if inline is not None:
                raise CliError(f"argument {key}: ignored explicit argument '{inline}'")
            return not negated
        if arity == "optional":
            return self._optional(option, inline, negated)
        if negated:
            raise CliError(f"argument {key}: unrecognized negation of an option that takes a value")
        if arity == "many":
            return [inline] if inline is not None else self._take_many(key)
        return inline if inline is not None else self._take_one(key)

    def _optional(self, option: Option, inline: str | None, negated: bool) -> Any:
        if negated:
            return False
        candidate = inline
        if candidate is None and self.pos < len(self.tokens) and not _looks_like_option(self.tokens[self.pos]):
            word = self.tokens[self.pos].lower()
            # Old StoreBoolean flags (`--enable-chunked-prefill true`) take only true|false; any other word is
            # the positional model, as in vLLM.
            if option.const is not None or word in _BOOL_WORDS:
                candidate = self.tokens[self.pos]
                self.pos += 1
        if candidate is None:
            return option.const if option.const is not None else True
        return _BOOL_WORDS.get(candidate.lower(), candidate) if option.const is None else candidate

    def _take_one(self, key: str) -> str:
        if self.pos >= len(self.tokens) or _looks_like_option(self.tokens[self.pos]):
            raise CliError(f"argument {key}: expected one argument")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _take_many(self, key: str) -> list[str]:
        values: list[str] = []
        while self.pos < len(self.tokens) and not _looks_like_option(self.tokens[self.pos]):
            values.append(self.tokens[self.pos])
            self.pos += 1
        if not values:
            raise CliError(f"argument {key}: expected at least one argument")
        return values

    def _dotted(self, option: Option, key: str, path: str, inline: str | None) -> None:
        if not option.json:
            raise CliError(f"unrecognized arguments: {key}.{path} ({key} does not take a JSON value)")
        append = path.endswith("+")
        raw = inline if inline is not None else self._take_one(f"{key}.{path}")
        current = self.out.values.get(option.dest)
        merged = dict(current) if isinstance(current, dict) else {}
        _set_path(merged, path.rstrip("+").split("."), _json_or_str(raw), append)
        self._store(option, key, merged)

    def _store(self, option: Option, spelled: str, value: Any) -> None:
        if option.arity == "append":
            value = [*self.out.values.get(option.dest, []), value]
        self.out.values[option.dest] = value
        self.out.spelled[option.dest] = spelled


def _json_or_str(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _set_path(target: dict[str, Any], keys: list[str], value: Any, append: bool) -> None:
    for key in keys[:-1]:
        nxt = target.get(key)
        target[key] = dict(nxt) if isinstance(nxt, dict) else {}
        target = target[key]
    last = keys[-1]
    if append:
        items = value.split(",") if isinstance(value, str) else [value]
        existing = target.get(last)
        target[last] = [*(existing if isinstance(existing, list) else []), *items]
    else:
        target[last] = value


def parse(argv: Sequence[str], table: OptionTable | None = None) -> ParsedArgs:
    """Parse the arguments that follow `vllm serve` (or `api_server`). Raises CliError like argparse exits 2."""
    tokens = [normalize(t) for t in config_file_args([normalize(t) for t in argv])]
    parsed = _Parser(table or vllm_options(), tokens).run()
    model_flag = parsed.values.pop("model", None)
    # `vllm serve X` wins over `--model Y`; `--model` alone is moved into the positional slot, as vLLM does.
    parsed.model = parsed.model or model_flag
    parsed.spelled.pop("model", None)
    return parsed
