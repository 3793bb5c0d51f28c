"""Constrained decoding: vLLM's `guided_*` (<= 0.11) and `structured_outputs` in SGLang's fields.

SGLang silently ignores both vLLM spellings (pydantic `extra="ignore"`), so unless they are translated the
client gets unconstrained output with HTTP 200. Two rules, in order:
`guided_legacy` folds the pre-0.11 top-level fields into a `structured_outputs` object (as vLLM 0.11 did),
then `structured_outputs_chat` / `structured_outputs_completion` turn that into SGLang's fields:

| structured_outputs | chat | completions |
|---|---|---|
| json | response_format json_schema {name, schema} | json_schema (a JSON string) |
| regex | regex | regex |
| choice | regex `(a\\|b)` of escaped choices | regex |
| grammar | ebnf | ebnf |
| json_object | response_format json_object | response_format json_object |
| structural_tag | response_format structural_tag | response_format structural_tag |

With a `response_format` constraint as well, vLLM 0.33 lets `response_format` replace the same kind
(`structured_outputs_from_response_format`) and rejects two different kinds; so do we.
"""

from __future__ import annotations

from typing import Any

import orjson

from middleware.errors import VllmError
from middleware.rewrite.base import Body, RewriteContext, RuleResult, bad_request, without
from middleware.rewrite.dump import dump

LEGACY = {
    "guided_json": "json",
    "guided_regex": "regex",
    "guided_choice": "choice",
    "guided_grammar": "grammar",
    "structural_tag": "structural_tag",
}
# Backend/whitespace knobs with no per-request SGLang equivalent (`--grammar-backend` is server-wide).
LEGACY_OPTIONS = ("guided_decoding_backend", "guided_whitespace_pattern", "guided_decoding_disable_fallback")
KINDS = ("json", "regex", "choice", "grammar", "json_object", "structural_tag")
_RESPONSE_FORMAT_KIND = {"json_schema": "json", "json_object": "json_object", "structural_tag": "structural_tag"}
SCHEMA_NAME = "guided_json"  # response_format.json_schema.name is required by SGLang; the name is cosmetic
_REGEX_SPECIAL = frozenset("\\.^$|?*+()[]{}")
_REGEX_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f", "\v": "\\v"}


def guided_legacy(body: Body, ctx: RewriteContext) -> RuleResult:
    present = [k for k in (*LEGACY, *LEGACY_OPTIONS) if k in body]
    if not present:
        return None
    found = {LEGACY[k]: body[k] for k in LEGACY if body.get(k) is not None}
    if len(found) > 1:
        return bad_request(
            "You can only use one kind of guided decoding ('guided_json', 'guided_regex' or 'guided_choice')."
        )
    out = without(body, present)
    if found:
        existing = body.get("structured_outputs")
        existing = existing if isinstance(existing, dict) else {}
        if any(existing.get(kind) is not None for kind in KINDS):
            return _conflict(sorted({*found, *(k for k in KINDS if existing.get(k) is not None)}))
        out["structured_outputs"] = {**existing, **found}
    return out


def structured_outputs_chat(body: Body, ctx: RewriteContext) -> RuleResult:
    return _structured_outputs(body, chat=True)


def structured_outputs_completion(body: Body, ctx: RewriteContext) -> RuleResult:
    return _structured_outputs(body, chat=False)


def _structured_outputs(body: Body, *, chat: bool) -> RuleResult:
    if "structured_outputs" not in body:
        return None
    spec = body["structured_outputs"]
    out = without(body, ("structured_outputs",))
    if spec is None:
        return out
    if not isinstance(spec, dict):
        return bad_request("structured_outputs must be an object.", "structured_outputs")
    kinds = [k for k in KINDS if spec.get(k) is not None and (k != "json_object" or spec[k])]
    if len(kinds) > 1:
        if set(kinds) <= {"json", "regex", "choice"}:
            return bad_request(
                "You can only use one kind of constraints for structured outputs ('json', 'regex' or 'choice').",
                "structured_outputs",
            )
        return _conflict(kinds)
    if not kinds:
        return bad_request("You must use one kind of structured outputs constraint but none are specified.")
    kind = kinds[0]
    response_format = body.get("response_format")
    rf_type = response_format.get("type") if isinstance(response_format, dict) else None
    rf_kind = _RESPONSE_FORMAT_KIND.get(rf_type) if isinstance(rf_type, str) else None
    if rf_kind == kind:
        return out  # vLLM: response_format replaces the same kind of constraint
    if rf_kind is not None:
        return _conflict(sorted({kind, rf_kind}))
    fields = _translate(kind, spec[kind], chat=chat)
    if isinstance(fields, VllmError):
        return fields
    out.update(fields)
    return out


def _translate(kind: str, value: Any, *, chat: bool) -> dict[str, Any] | VllmError:
    if kind == "json":
        return _json(value, chat=chat)
    if kind == "regex":
        return {"regex": value} if isinstance(value, str) else _invalid("regex", "a string")
    if kind == "choice":
        return _choice(value)
    if kind == "grammar":
        return {"ebnf": value} if isinstance(value, str) else _invalid("grammar", "a string")
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    return _structural_tag(value)


def _json(value: Any, *, chat: bool) -> dict[str, Any] | VllmError:
    schema = value
    if isinstance(value, str):
        try:
            schema = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return bad_request(f"Invalid JSON schema in structured outputs: {exc}", "structured_outputs")
    if not isinstance(schema, dict):
        return _invalid("json", "a JSON schema object")
    if not chat:  # completions take the schema as a string; keep the client's own text when it sent one
        # dump, not orjson.dumps: a schema deeper than orjson's 254 levels must still reach the engine
        return {"json_schema": value if isinstance(value, str) else dump(schema).decode()}
    return {"response_format": {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": schema}}}


def _choice(value: Any) -> dict[str, Any] | VllmError:
    if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
        return _invalid("choice", "a non-empty list of strings")
    return {"regex": "(" + "|".join(escape_regex(c) for c in value) + ")"}


def escape_regex(text: str) -> str:
    """Escape `text` as a regex literal. Unlike `re.escape` this escapes only metacharacters and spells
    control characters as `\\n`-style escapes, so xgrammar, outlines and llguidance all read it alike
    (`re.escape` emits `\\ `, `\\#`, `\\&`, `\\~` and raw newlines, which not every grammar backend parses)."""
    out = []
    for ch in text:
        if ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        elif ch in _REGEX_CONTROL:
            out.append(_REGEX_CONTROL[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _structural_tag(value: Any) -> dict[str, Any] | VllmError:
    tag = value
    if isinstance(value, str):
        try:
            tag = orjson.loads(value)
        except orjson.JSONDecodeError:
            tag = None
    if not isinstance(tag, dict):
        return _invalid("structural_tag", "a JSON object")
    return {"response_format": {**tag, "type": "structural_tag"}}


def _invalid(kind: str, expected: str) -> VllmError:
    return bad_request(f"structured_outputs.{kind} must be {expected}.", "structured_outputs")


def _conflict(kinds: list[str]) -> VllmError:
    return bad_request(
        f"You can only use one kind of structured outputs constraint but multiple are specified: {', '.join(kinds)}."
    )
