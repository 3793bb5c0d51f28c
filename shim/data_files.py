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


def data_text(package: str, name: str) -> str:
    """A file of `shim.conf` or `shim.templates`. A checkout on sys.path ahead of a non-editable install has
    no such subpackage, so fall back to the folder beside shim/."""
    try:
        return resources.files(package).joinpath(name).read_text()
    except ModuleNotFoundError:
        folder = package.rpartition(".")[2]
        return (Path(__file__).resolve().parents[1] / folder / name).read_text()


@cache
def load_data(name: str) -> Any:
    """A file from conf/ (JSON or YAML), shipped in the package as `shim.conf`."""
    text = data_text("shim.conf", name)
    return yaml.safe_load(text) if name.endswith((".yaml", ".yml")) else json.loads(text)
