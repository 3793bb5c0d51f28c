"""The translation table is complete and every SGLang flag it names exists with the arity we emit."""

from __future__ import annotations

import pytest
import yaml

from shim.data_files import load_data, load_yaml
from shim.options import vllm_options
from shim.plan_steps import STEPS
from shim.rules import _rule, rules
from shim.transforms import TRANSFORMS

SGLANG_FLAGS = {s: f for f in load_data("sglang-flags.json")["flags"] for s in f["option_strings"]}
FLAG_TRANSFORMS = {"flag", "flag_if_false", "if_priority"}


def test_every_vllm_option_has_exactly_one_row() -> None:
    assert set(rules()) == set(vllm_options().options)


@pytest.mark.parametrize("dest", sorted(d for d, r in rules().items() if r.action == "map"))
def test_map_targets_exist_in_sglang(dest: str) -> None:
    rule = rules()[dest]
    assert rule.transform in TRANSFORMS
    for flag in rule.flags:
        assert flag in SGLANG_FLAGS, f"{dest}: SGLang has no {flag}"
        takes_value = SGLANG_FLAGS[flag]["takes_value"]
        assert takes_value == (rule.transform not in FLAG_TRANSFORMS), f"{dest}: arity of {flag}"


def test_plan_rows_name_a_step() -> None:
    handlers = {r.handler for r in rules().values() if r.action == "plan"}
    assert handlers <= set(STEPS)
    assert set(STEPS) <= handlers, "a plan step that no row uses is dead code"


def test_drop_and_reject_rows_explain_themselves() -> None:
    for dest, rule in rules().items():
        if rule.action in ("drop", "reject"):
            assert len(rule.text) > 10, dest


def test_parser_maps_target_sglang_choices() -> None:
    maps = load_data("parsers.yaml")
    for dest, mapping in maps.items():
        choices = SGLANG_FLAGS["--" + dest.replace("_", "-")]["choices"]
        for vllm_name, sglang_name in mapping.items():
            assert sglang_name in choices, f"{dest}: {vllm_name} → {sglang_name}"


@pytest.mark.parametrize("text", ["a: 1\na: 2\n", "a: {x: 1, x: 2}\n", "a:\n  - {map: --a, map: --b}\n"])
def test_conf_yaml_refuses_a_repeated_key(text: str) -> None:
    # yaml.safe_load would keep the last row and drop the first without a word.
    with pytest.raises(yaml.YAMLError, match="duplicate key"):
        load_yaml(text)


def test_conf_yaml_reads_a_table_without_repeats() -> None:
    assert load_yaml("a: {map: --a, value: int}\nb: [1, 2]\n") == {"a": {"map": "--a", "value": "int"}, "b": [1, 2]}


@pytest.mark.parametrize("row", [{"map": "--x", "drop": "why"}, {"plan": "ports", "reject": "no"}])
def test_a_row_with_two_actions_is_refused(row: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="more than one action"):
        _rule("x", row)
