"""Against SGLang 0.5.23's own xgrammar-backend check: every schema schema_limits loosens was refused by SGLang,
and what it becomes is accepted (so the request works, as on vLLM)."""

from __future__ import annotations

from typing import Any

import pytest

from middleware.rewrite.schema_limits import loosen
from sim.grammar import json_grammar_error
from tests.contract.conftest import SGLangOracle
from tests.unit.middleware.rewrite.test_schema_limits import CASES, CLEAN

pytestmark = pytest.mark.contract


@pytest.mark.parametrize(("before", "after", "notes"), CASES)
def test_loosened_schema_passes_sglang(
    sglang_oracle: SGLangOracle, before: dict[str, Any], after: dict[str, Any], notes: list[str]
) -> None:
    refused = sglang_oracle.validate_json_schema(before)
    assert not refused["ok"], "SGLang accepts this schema: nothing needs loosening"
    assert loosen(before)[0] == after
    accepted = sglang_oracle.validate_json_schema(after)
    assert accepted["ok"] and accepted["error"] is None


@pytest.mark.parametrize("schema", CLEAN)
def test_untouched_schema_passes_sglang(sglang_oracle: SGLangOracle, schema: dict[str, Any]) -> None:
    assert loosen(schema)[0] is schema
    assert sglang_oracle.validate_json_schema(schema)["ok"]


@pytest.mark.parametrize("schema", [before for before, _, _ in CASES] + CLEAN)
def test_simulated_engine_refuses_keywords_as_sglang_does(sglang_oracle: SGLangOracle, schema: dict[str, Any]) -> None:
    """The simulated engine's keyword check (sim/grammar.py) gives SGLang's own verdict and words."""
    verdict = sglang_oracle.validate_json_schema(schema)
    if verdict["ok"] or "keyword(s)" in verdict["error"]:
        expected = None if verdict["ok"] else f"Failed to compile json grammar: {verdict['error']}"
        assert json_grammar_error(schema) == expected
