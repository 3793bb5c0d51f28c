"""The one place that reads the files shipped with the code: conf/ (tables) and templates/ (Jinja2).

The install maps the top-level conf/ and templates/ folders into the packages `shim.conf` and `shim.templates`
(pyproject.toml), so an installed `vllm` finds them without a checkout.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

try:
    # libyaml's parser: conf/rules.yaml takes ~6 ms instead of ~65 ms, on every `vllm serve`.
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # a PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

CHECKOUT = Path(__file__).resolve().parents[1]


def data_text(package: str, name: str) -> str:
    """A file of `shim.conf` or `shim.templates`. Code imported from a checkout reads the checkout's folder:
    the package may be missing (a non-editable install) or, worse, map to another checkout (an editable
    install of one worktree while the code runs from another), whose tables would be tested instead."""
    folder = package.rpartition(".")[2]
    if (CHECKOUT / "pyproject.toml").is_file():
        return (CHECKOUT / folder / name).read_text()
    return resources.files(package).joinpath(name).read_text()


class _UniqueKeyLoader(_SafeLoader):
    """yaml.safe_load keeps the last of two equal keys; in a table of one row per option that silently drops a
    row, so a repeated key is an error here."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """YAML that refuses duplicate keys (the conf/ tables)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a safe loader (either parser): no arbitrary objects


@cache
def load_data(name: str) -> Any:
    """A file from conf/ (JSON or YAML), shipped in the package as `shim.conf`."""
    text = data_text("shim.conf", name)
    return load_yaml(text) if name.endswith((".yaml", ".yml")) else json.loads(text)
