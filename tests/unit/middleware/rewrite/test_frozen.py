"""Read-only shared schemas (`middleware/rewrite/frozen.py`) and the rewrite that hands them out."""

from __future__ import annotations

import sys
from typing import Any

import orjson
import pytest

from middleware.config import MiddlewareConfig
from middleware.rewrite import schema
from middleware.rewrite.frozen import FrozenDict, FrozenList, freeze
from middleware.rewrite.route_rules import dump, rewrite

CHAT = "/v1/chat/completions"
CONFIG = MiddlewareConfig(served_model_names=("m",))


def test_freeze_copies_deeply_and_charges_every_object() -> None:
    value = {"a": [1, "two", {"b": None, "c": [True, 2.5]}], "d": {}}
    frozen, size = freeze(value)
    assert frozen == value and type(frozen) is FrozenDict and type(frozen["a"]) is FrozenList
    assert frozen["a"][2] is not value["a"][2] and type(frozen["a"][2]["c"]) is FrozenList
    value["a"][2]["b"] = "changed"
    assert frozen["a"][2]["b"] is None
    containers = [frozen, frozen["a"], frozen["a"][2], frozen["a"][2]["c"], frozen["d"]]
    assert size >= sum(sys.getsizeof(c) for c in containers) + sum(sys.getsizeof(k) for k in "abcd")
    assert freeze("s") == ("s", sys.getsizeof("s"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d, lst: d.__setitem__("k", 1), lambda d, lst: d.__delitem__("a"), lambda d, lst: d.update(k=1),
        lambda d, lst: d.setdefault("k", 1), lambda d, lst: d.pop("a"), lambda d, lst: d.popitem(),
        lambda d, lst: d.clear(), lambda d, lst: d.__ior__({"k": 1}), lambda d, lst: lst.append(1),
        lambda d, lst: lst.extend([1]), lambda d, lst: lst.insert(0, 1), lambda d, lst: lst.pop(),
        lambda d, lst: lst.remove(1), lambda d, lst: lst.sort(), lambda d, lst: lst.reverse(),
        lambda d, lst: lst.clear(), lambda d, lst: lst.__setitem__(0, 2), lambda d, lst: lst.__delitem__(0),
        lambda d, lst: lst.__iadd__([1]), lambda d, lst: lst.__imul__(2),
    ],
)  # fmt: skip
def test_every_mutator_refuses(mutate: Any) -> None:
    frozen, _ = freeze({"a": [1]})
    with pytest.raises(TypeError, match="read-only"):
        mutate(frozen, frozen["a"])
    assert frozen == {"a": [1]}


def test_frozen_containers_are_plain_json_to_every_encoder() -> None:
    frozen, _ = freeze({"a": [1, {"b": "é"}], "n": None})
    assert orjson.dumps(frozen) == b'{"a":[1,{"b":"\xc3\xa9"}],"n":null}'
    assert dump({"deep": frozen, "big": 2**70}).startswith(b'{"deep":{"a":[1,{"b":"')  # the json fallback
    assert {**frozen, "x": 1} == {"a": [1, {"b": "é"}], "n": None, "x": 1} and type(dict(frozen)) is dict


def test_schema_as_deep_as_orjson_allows_is_frozen_without_recursion_trouble() -> None:
    params: dict[str, Any] = {"type": "object", "properties": []}
    for _ in range(125):  # 250 levels of JSON: orjson's limit is 254
        params = {"type": "object", "properties": {"child": params}}
    orjson.dumps(params)
    fixed = schema.repair_parameters(params)
    assert type(fixed) is FrozenDict and schema.repair_parameters(params) is fixed
    assert dump(fixed).count(b'"properties":{}') == 1


def tool(params: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "parameters": params}}


def test_a_later_request_gets_the_repaired_schema_whatever_the_first_did_with_its_bodies() -> None:
    def params() -> dict[str, Any]:
        return {"type": "object", "properties": {"a": {"type": "string", "enum": ["x"]}, "b": {"properties": []}}}

    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [tool(params())]}
    first = rewrite(CHAT, body, CONFIG)
    assert first.rules == ("tool_schemas",)
    body["tools"][0]["function"]["parameters"]["properties"]["a"]["enum"].append("input changed")
    sent = first.body["tools"][0]["function"]["parameters"]
    with pytest.raises(TypeError):
        sent["properties"]["a"]["enum"].append("output changed")
    first.body["tools"][0]["function"]["name"] = "renamed"  # the request's own copies stay writable
    again = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [tool(params())]}
    second = rewrite(CHAT, again, CONFIG)
    assert second.body["tools"][0]["function"]["parameters"] is sent
    assert orjson.loads(dump(second.body))["tools"] == [{
        "type": "function",
        "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"type": "string", "enum": ["x"]}, "b": {"properties": {}}}}},
    }]  # fmt: skip
