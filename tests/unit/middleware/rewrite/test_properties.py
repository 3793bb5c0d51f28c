"""Property tests over `rewrite`: total on any JSON object, pure, idempotent, and `needs_parse` is safe.

The generated bodies mix arbitrary JSON with the field names and values the rules look at, so most
examples exercise real rule paths (including garbage in odd places: `tools: "x"`, `messages: 5`, ...).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from middleware.config import LoraModule, MiddlewareConfig
from middleware.errors import VllmError
from middleware.rewrite.base import RewriteContext
from middleware.rewrite.route_rules import _ESCAPED_ASCII as ESCAPED_ASCII
from middleware.rewrite.route_rules import ROUTE_RULES, RewriteResult, dump, needs_parse, rewrite
from tests.unit.middleware.rewrite.test_schema import MESSY_SCHEMAS

CONFIG = MiddlewareConfig(served_model_names=("qwen3", "alias"), lora_modules=(LoraModule("lora-a", "/a"),))
CTX = RewriteContext(CONFIG, frozenset({"runtime-b"}))
# Chat-shaped routes have the most rules, so they are drawn more often.
ROUTES = st.sampled_from([*sorted(ROUTE_RULES), "/v1/chat/completions", "/tokenize", "/v1/completions"])
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELDS = [
    "model", "messages", "tools", "prompt", "input", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
    "guided_decoding_backend", "structural_tag", "structured_outputs", "response_format", "request_id", "rid",
    "include_stop_str_in_output", "no_stop_trim", "top_k", "logprobs", "top_logprobs", "repetition_penalty",
    "stream", "stream_options", "add_generation_prompt", "continue_final_message", "truncate_prompt_tokens", "n",
    "presence_penalty", "frequency_penalty", "max_tokens", "temperature", "top_n", "regex", "ebnf", "json_schema",
]  # fmt: skip
PART_TYPES = ["text", "input_text", "output_text", "refusal", "thinking", "image_url", "input_image", None, 7]

KEYS = st.one_of(st.sampled_from(FIELDS), st.text(max_size=4))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6), st.sampled_from(["qwen3", "alias", "lora-a", "runtime-b", "qwen3:lora-a", "user", "x"]),
    st.sampled_from([0, -1, 0.0, 2.5, 21, "json", "regex"]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(KEYS, c, max_size=4)),
    max_leaves=8,
)  # fmt: skip
parts = st.one_of(
    json_values,
    st.builds(
        lambda t, extra: {"type": t, **extra} if t is not None else extra,
        st.sampled_from(PART_TYPES),
        st.dictionaries(st.sampled_from(["text", "refusal", "thinking", "image_url"]), scalars, max_size=2),
    ),
)  # fmt: skip
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "user", "assistant", "system", "tool", 3])},
    optional={
        "content": st.one_of(st.none(), st.text(max_size=3), st.lists(parts, max_size=3)),
        "reasoning": scalars,
        "reasoning_content": scalars,
        "tools": json_values,
    },
)
messages = st.lists(st.one_of(message, json_values), min_size=1, max_size=4)
tools = st.lists(
    st.one_of(
        json_values,
        st.builds(lambda p: {"type": "function", "function": {"name": "f", "parameters": p}}, MESSY_SCHEMAS),
        st.builds(lambda p: {"type": "function", "name": "f", "parameters": p}, MESSY_SCHEMAS),
    ),
    max_size=3,
)
small_values = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(KEYS, scalars, max_size=2))
# Every field the rules read is present in about half the bodies, so each rule meets bodies with and
# without its trigger; arbitrary JSON is mixed in on top.
shaped = st.fixed_dictionaries(
    {},
    optional={
        **{f: small_values for f in FIELDS},
        "messages": st.one_of(messages, json_values),
        "tools": st.one_of(tools, json_values),
        "structured_outputs": st.dictionaries(
            st.sampled_from(["json", "regex", "choice", "grammar", "json_object", "structural_tag"]), json_values,
            max_size=2),
    },
)  # fmt: skip
bodies = st.one_of(
    shaped, st.builds(lambda loose, known: {**loose, **known}, st.dictionaries(KEYS, json_values, max_size=4), shaped)
)


def _values(*values: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(values), scalars)


chat_messages = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "assistant", "system", "developer"]),
                "content": st.one_of(st.none(), st.text(max_size=3), st.lists(parts, min_size=1, max_size=3)),
            },
            optional={"reasoning": st.one_of(st.text(max_size=3), scalars), "tools": tools},
        ),
        json_values,
    ),
    min_size=1,
    max_size=4,
)
SO_KINDS = st.sampled_from(["json", "regex", "choice", "grammar", "json_object", "structural_tag", "other"])
SO_VALUES = _values({"type": "object"}, '{"type": "string"}', "[a-z]+", ["a", "b|c"], [], True, "{bad", '{"x": 1}')
# For each rule, the fields it reads, drawn with the values that matter to it.
FOCUS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "model": {"model": _values("qwen3", "alias", "lora-a", "runtime-b", "qwen3:lora-a", "qwen3:x", "nope", "")},
    "stream_options": {"stream_options": _values({"include_usage": True}, {}), "stream": _values(True, False, 1)},
    "logprobs": {"logprobs": _values(True, False, 0, 5, 20, 21, -1, -2), "top_logprobs": _values(0, 5, 21, -1, -2)},
    "repetition_penalty": {"repetition_penalty": _values(0, -1, 1, 2, 2.0001, 5, "2")},
    "generation_prompt": {
        "add_generation_prompt": _values(True, False), "continue_final_message": _values(True, False),
        "messages": chat_messages,
    },
    "guided_legacy": {
        **{k: SO_VALUES for k in ("guided_json", "guided_regex", "guided_choice", "guided_grammar", "structural_tag")},
        "guided_decoding_backend": scalars, "structured_outputs": st.dictionaries(SO_KINDS, SO_VALUES, max_size=2),
    },
    "structured_outputs": {
        "structured_outputs": st.one_of(st.dictionaries(SO_KINDS, SO_VALUES, max_size=2), scalars),
        "response_format": _values({"type": "text"}, {"type": "json_object"}, {"type": "json_schema"}),
    },
    "request_id": {"request_id": scalars, "rid": scalars},
    "include_stop_str_in_output": {"include_stop_str_in_output": scalars},
    "top_k": {"top_k": _values(0, 0.0, -0.0, -1, 5, False, "0")},
    "truncate_prompt_tokens": {"truncate_prompt_tokens": scalars},
    "null_defaults": {f: st.one_of(st.none(), scalars) for f in ("n", "stream", "max_tokens", "frequency_penalty")},
    "user_content_null": {"messages": chat_messages},
    "content_parts": {"messages": chat_messages},
    "assistant_reasoning": {"messages": chat_messages},
    "tool_schemas": {"tools": st.one_of(tools, json_values), "messages": chat_messages},
    "top_n": {"top_n": _values(0, 0.0, 1, -1, "0")},
    "n": {"n": _values(0, -1, 1, 2, 0.0, True, "0")},
    "sampling_ranges": {
        "presence_penalty": _values(-2, 2, 2.0001, -2.5, 10, 1e1, 1.5),
        "frequency_penalty": _values(-3, 0, 1.99, 2.5),
        "temperature": _values(0, 0.0, 1e-6, 0.000001, 0.00002, -0.5, 1, 0.7, float("nan"), float("inf")),
        "top_p": _values(0, 0.0, 0.5, 1, 1.0, 1.5, -1, 5e-1),
        "top_k": _values(-1, -2, 0, 5),
        "min_p": _values(0, 1, 1.5, -0.1, 0.5),
        "max_tokens": _values(0, -1, 1, 16, 1e0),
        "max_completion_tokens": _values(0, -1, 5),
        "min_tokens": _values(0, -1, 3, 100),
        "stop": _values("", "x", ["a", ""], [], ["]", ""]),
        "n": _values(1, 2, 0),
    },
    "schema_limits": {
        "response_format": _values(
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer", "multipleOf": 2}}},
            {"type": "json_schema", "json_schema": {"schema": {"type": "string", "format": "x", "pattern": "a"}}},
            {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}, {"type": "json_object"},
        ),
        "json_schema": _values('{"type": "array", "uniqueItems": true}', '{"if": {}}', '{"type": "string"}', "{"),
        "structured_outputs": _values({"json": {"not": {}}}, {"json": {"type": "string", "minLength": 1}}),
    },
    "score_request": {"text_1": _values("q", ["q"], ["a", "b"], [], 1), "text_2": _values("d", ["d", "e"], [{}])},
    "tool_choice": {"tool_choice": _values("none", "auto", "required", None, {"type": "function"}), "tools": tools},
}  # fmt: skip


RULE_NAMES = sorted({rule.name for rules in ROUTE_RULES.values() for rule in rules})


@pytest.mark.parametrize("name", RULE_NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_rule_is_silent_without_its_triggers_focused(name: str, data: st.DataObject) -> None:
    """Like the test above, on bodies drawn around one rule, so rare paths of every rule are exercised."""
    route = data.draw(st.sampled_from([r for r, rules in ROUTE_RULES.items() if any(x.name == name for x in rules)]))
    noise = data.draw(st.dictionaries(KEYS, small_values, max_size=3))
    focus = FOCUS[name]
    # All of the rule's fields, or a small subset (often one), so each trigger is also met on its own.
    keys = data.draw(st.one_of(st.just(sorted(focus)), st.lists(st.sampled_from(sorted(focus)), unique=True)))
    body = {**noise, **{key: data.draw(focus[key]) for key in keys}}
    raw = dump(body)
    for rule in ROUTE_RULES[route]:
        if rule.name == name and not rule.may_change(raw, CTX):
            assert rule.apply(body, CTX) is None, rule.name
    result = rewrite(route, body, CTX)
    _check_result(route, body, result)
    if result.error is None and result.changed:
        assert not rewrite(route, result.body, CTX).changed


def _check_result(route: str, body: dict[str, Any], result: RewriteResult) -> None:
    assert isinstance(result, RewriteResult)
    if result.error is not None:
        assert isinstance(result.error, VllmError) and 400 <= result.error.status < 500
        assert not result.changed and len(result.rules) == 1
    elif not result.changed:
        assert result.body is body and result.rules == ()
    else:
        assert result.body is not body and result.rules
        orjson.loads(dump(result.body))


@SETTINGS
@given(ROUTES, bodies)
def test_total_pure_and_idempotent(route: str, body: dict[str, Any]) -> None:
    original = copy.deepcopy(body)
    result = rewrite(route, body, CTX)
    assert body == original, "rewrite mutated its input"
    _check_result(route, body, result)
    if result.error is None and result.changed:
        snapshot = copy.deepcopy(result.body)
        again = rewrite(route, result.body, CTX)
        assert again.error is None and not again.changed, (result.rules, again)
        assert result.body == snapshot


@SETTINGS
@given(ROUTES, bodies)
def test_no_rule_raises(route: str, body: dict[str, Any]) -> None:
    """`rewrite` swallows a rule's exception as a safety net; the rules themselves must not need it."""
    for rule in ROUTE_RULES[route]:
        out = rule.apply(body, CTX)
        assert out is None or isinstance(out, (dict, VllmError))
        if isinstance(out, dict):
            body = out


@SETTINGS
@given(ROUTES, bodies)
def test_each_rule_is_silent_without_its_triggers(route: str, body: dict[str, Any]) -> None:
    """Per rule, so no other rule's trigger can mask a wrong one. By induction this proves `needs_parse`:
    when no rule may change the raw body, every rule sees the original body and leaves it alone."""
    raw = dump(body)
    assert not ESCAPED_ASCII.search(raw)  # orjson never escapes letters; such bodies always parse anyway
    for rule in ROUTE_RULES[route]:
        if not rule.may_change(raw, CTX):
            assert rule.apply(body, CTX) is None, rule.name
        if rule.prefilter is not None and not rule.prefilter(raw, None):
            assert rule.apply(body, CTX) is None, rule.name


@SETTINGS
@given(ROUTES, bodies)
def test_needs_parse_is_the_union_of_the_rules(route: str, body: dict[str, Any]) -> None:
    raw = dump(body)
    expected = any(rule.may_change(raw, CTX) for rule in ROUTE_RULES[route])
    assert needs_parse(route, raw, CTX) is expected
    if not expected:
        result = rewrite(route, orjson.loads(raw), CTX)
        assert result.error is None and not result.changed, result


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MESSY_SCHEMAS, min_size=1, max_size=3), st.sampled_from(["/v1/chat/completions", "/tokenize"]))
def test_messy_tool_schemas_come_out_valid(schemas: list[Any], route: str) -> None:
    body = {
        "model": "qwen3",
        "messages": [
            {"role": "system", "content": "s", "tools": [_tool(s) for s in schemas]},
            {"role": "user", "content": "hi"},
        ],
        "tools": [_tool(s) for s in schemas],
    }  # fmt: skip
    result = rewrite(route, body, CTX)
    assert result.error is None
    out = result.body
    for tool in [*out["tools"], *out["messages"][0]["tools"]]:
        params = tool["function"]["parameters"]
        if params is not None:
            Draft202012Validator.check_schema(params)


def _tool(schema: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "parameters": schema}}
