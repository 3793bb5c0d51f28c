"""docs/request-translation.md is generated from ROUTE_RULES and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from middleware.rewrite.docs import BEGIN, END, render, splice
from middleware.rewrite.route_rules import ROUTE_RULES

DOC = Path(__file__).resolve().parents[4] / "docs" / "request-translation.md"


def test_generated_tables_are_current() -> None:
    text = DOC.read_text()
    assert splice(text) == text, "run `python -m middleware.rewrite.docs` to regenerate the tables"


def test_every_rule_and_route_is_documented() -> None:
    text = DOC.read_text()
    block = text[text.index(BEGIN) : text.index(END)]
    for route, rules in ROUTE_RULES.items():
        assert f"`{route}`" in block, route
        for rule in rules:
            assert f"| `{rule.name}` | {rule.vllm.replace('|', chr(92) + '|')} |" in block, (route, rule.name)


def test_render_is_deterministic() -> None:
    assert render() == render()
