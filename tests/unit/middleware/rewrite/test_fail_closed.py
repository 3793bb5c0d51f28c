"""Fail closed (issue 14 item 3): a rule that raises ends the request with an error, never a body missing
what the client asked for; and over deep and odd bodies, "no error => every constraint reached the engine".
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from middleware.config import MiddlewareConfig
from middleware.rewrite import route_rules
from middleware.rewrite.base import RewriteRule
from middleware.rewrite.failure import TOO_DEEP, rule_failure
from middleware.rewrite.route_rules import dump, rewrite
from tests.unit.middleware.rewrite.test_properties import json_values

CONFIG = MiddlewareConfig(served_model_names=("qwen3",))
CHAT, COMPLETION = "/v1/chat/completions", "/v1/completions"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def deep_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _raising(exc: BaseException) -> RewriteRule:
    def apply(body: dict[str, Any], ctx: Any) -> None:
        raise exc

    return RewriteRule("boom", apply, "", "", (b"",))


@pytest.mark.parametrize(
    ("exc", "status", "text"),
    [
        (RecursionError("maximum recursion depth exceeded"), 400, "nested too deeply"),
        (TypeError("Recursion limit reached"), 400, "nested too deeply"),  # orjson's depth cap
        (ValueError("Exceeds the limit (4300 digits)"), 400, "4300 digits"),
        (KeyError("x"), 500, "'boom' failed"),
        (TypeError("'int' object is not iterable"), 500, "'boom' failed"),
    ],
)
def test_a_raising_rule_answers_instead_of_being_skipped(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, status: int, text: str
) -> None:
    monkeypatch.setattr(route_rules, "ROUTE_RULES", {"/x": (_raising(exc),)})
    result = rewrite("/x", {"structured_outputs": {"regex": "a"}}, CONFIG)
    assert result.error is not None and result.error.status == status and text in result.error.message
    assert result.failure is exc and result.rules == ("boom",) and not result.changed


def test_classification_is_the_documented_one() -> None:
    assert rule_failure("r", RecursionError()) is TOO_DEEP
    assert rule_failure("r", AttributeError("x")).type == "InternalServerError"


@pytest.mark.parametrize("route", [CHAT, COMPLETION])
@pytest.mark.parametrize("spelling", ["guided_json", "structured_outputs"])
@pytest.mark.parametrize("depth", [10, 253, 300, 505])  # 505: what orjson parses (1,024 levels)
def test_deep_schema_reaches_the_engine(route: str, spelling: str, depth: int) -> None:
    """Before: on completions a schema deeper than orjson's 254 levels made the rule raise, the rule was
    skipped and SGLang got the body without any constraint (unconstrained output, 200)."""
    schema = deep_schema(depth)
    body = {"model": "qwen3", "prompt": "x", "messages": [{"role": "user", "content": "x"}]}
    body[spelling] = schema if spelling == "guided_json" else {"json": schema}
    result = rewrite(route, body, CONFIG)
    assert result.error is None
    assert _constraints(route, orjson.loads(dump(result.body))) == [("json", dump(schema))]


# ---- the property ---------------------------------------------------------------------------------------

KIND_FIELDS = {"json": "guided_json", "regex": "guided_regex", "choice": "guided_choice", "grammar": "guided_grammar"}
deep = st.integers(0, 505).map(deep_schema)
constraint_value = {
    "json": st.one_of(deep, deep.map(lambda s: json.dumps(s)), json_values),
    "regex": st.one_of(st.text(max_size=8), json_values),
    "choice": st.one_of(st.lists(st.text(max_size=4), min_size=1, max_size=3), json_values),
    "grammar": st.one_of(st.text(max_size=8), json_values),
}
odd_extras = st.dictionaries(
    st.sampled_from(["messages", "prompt", "response_format", "tools", "top_k", "logprobs", "n", "regex", "model",
                     "request_id", "stream_options", "repetition_penalty", "content", "ebnf"]),
    json_values, max_size=5,
)  # fmt: skip


@st.composite
def constrained_bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any], str, Any]:
    kind = draw(st.sampled_from(sorted(KIND_FIELDS)))
    value = draw(constraint_value[kind])
    body = draw(odd_extras)
    if draw(st.booleans()):
        body[KIND_FIELDS[kind]] = value
    else:
        body["structured_outputs"] = {kind: value}
    return draw(st.sampled_from([CHAT, COMPLETION, "/invocations"])), body, kind, value


def _constraints(route: str, sent: dict[str, Any]) -> list[tuple[str, Any]]:
    """The constraints a body gives SGLang, as (kind, value); JSON schemas as compact JSON bytes (comparing
    deep dicts with == would recurse past Python's limit)."""
    found: list[tuple[str, Any]] = []
    rf = sent.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        found.append(("json", dump(rf["json_schema"]["schema"])))
    elif isinstance(rf, dict) and rf.get("type") in ("json_object", "structural_tag"):
        found.append((rf["type"], rf))
    if "json_schema" in sent and route != CHAT:
        found.append(("json", dump(orjson.loads(sent["json_schema"]))))
    found.extend((key, sent[key]) for key in ("regex", "ebnf") if key in sent)
    return found


@SETTINGS
@given(constrained_bodies())
def test_no_error_means_the_constraint_reached_the_engine(case: tuple[str, dict[str, Any], str, Any]) -> None:
    route, body, kind, value = case
    result = rewrite(route, body, CONFIG)
    if value is None:  # `guided_choice: null` is no constraint (vLLM reads null as absent)
        return
    if result.error is not None:
        assert result.error.status in (400, 404) or result.failure is not None
        return
    sent = orjson.loads(dump(result.body))
    assert not any(k.startswith("guided_") or k == "structured_outputs" for k in sent), sent
    got = _constraints(route, sent)
    assert got, f"constraint {kind}={value!r} lost: {sent}"
    if isinstance(body.get("response_format"), dict) and body["response_format"].get("type") in (
        "json_schema", "json_object", "structural_tag"
    ):
        return  # vLLM lets response_format replace the same kind; either way one constraint went
    if kind == "json":
        schema = orjson.loads(value) if isinstance(value, str) else value
        assert ("json", dump(schema)) in got
    elif kind == "choice":
        assert any(k == "regex" for k, _ in got)
    else:
        assert (("regex" if kind == "regex" else "ebnf"), value) in got

