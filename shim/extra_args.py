"""SGLANG_EXTRA_ARGS, checked with SGLang's own option semantics so nothing in it can move or open the engine.

SGLang parses its command line with argparse and allow_abbrev on: `--hos 0.0.0.0`, `--ho=0.0.0.0` and
`--po 9` are `--host` and `--port`. Comparing spellings is not enough; each word is resolved here as
Python's argparse (3.11, `_parse_optional` / `_get_option_tuples`) resolves it against SGLang's option
list (conf/sglang-flags.json, SGLang's own flag dump). A word that may set a reserved destination is
refused, even when argparse would call it ambiguous (it could resolve on another Python). Every word that
starts with `-` is checked, values included: argparse reads such a word as an option, never as a value.
tests/contract/test_extra_args_contract.py checks the resolution against SGLang's real parser.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from shim.data_files import load_data
from shim.errors import CliError

# Destinations the plan decides. Why each is reserved:
RESERVED: dict[str, str] = {
    # where the engine is and what it serves: haproxy and the middleware are wired to these
    "host": "the engine listens on 127.0.0.1 only",
    "port": "the engine's port is wired into haproxy and the middleware",
    "model_path": "the model is vLLM's model argument",
    "served_model_name": "the served name is vLLM's --served-model-name",
    # secrets never go on a command line; an admin key would also lock the middleware out of admin routes
    "api_key": "the engine runs with an internal key given off the command line",
    "admin_api_key": "secrets never go on a command line, and the middleware must reach the admin routes",
    "ssl_keyfile_password": "secrets never go on a command line",
    # TLS or gRPC on the engine port breaks the plain HTTP that the middleware speaks to it
    "ssl_keyfile": "the engine speaks plain HTTP on loopback",
    "ssl_certfile": "the engine speaks plain HTTP on loopback",
    "ssl_ca_certs": "the engine speaks plain HTTP on loopback",
    "enable_ssl_refresh": "the engine speaks plain HTTP on loopback",
    "grpc_mode": "the engine serves HTTP",
    "smg_grpc_mode": "the engine serves HTTP",
    # more listeners
    "grpc_port": "the engine opens no listener but its HTTP port",
    "smg_http_sidecar_port": "the engine opens no listener but its HTTP port",
    # a file of options can set any of the above
    "config": "options from a file cannot be checked",
}
SOURCE = "environment variable SGLANG_EXTRA_ARGS"


@cache
def sglang_options() -> dict[str, str]:
    """Every option string of SGLang's parser → its destination (argparse adds -h/--help itself)."""
    options = {"-h": "help", "--help": "help"}
    for entry in load_data("sglang-flags.json")["flags"]:
        for option in entry["option_strings"]:
            options[option] = entry["dest"]
    return options


def resolve(word: str) -> frozenset[str]:
    """The destinations argparse may give `word`: one (exact or unique prefix), several (ambiguous), none."""
    options = sglang_options()
    if not word.startswith("-") or word in ("-", "--"):  # "--" ends the options: what follows is positional
        return frozenset()
    if word in options:
        return frozenset({options[word]})
    head, eq, _ = word.partition("=")
    if eq and head in options:
        return frozenset({options[head]})
    if word.startswith("--"):
        return frozenset(dest for option, dest in options.items() if option.startswith(head))
    # `-xVALUE`: the two-character short option with its value attached, or a single-dash prefix.
    short = word[:2]
    return frozenset(
        dest
        for option, dest in options.items()
        if option == short or (not option.startswith("--") and option.startswith(word))
    )


def check_extra_args(words: Sequence[str]) -> list[str]:
    """The words, or CliError (exit 2) naming the first one that may set a destination the plan decides."""
    for word in words:
        hit = sorted(resolve(word) & RESERVED.keys())
        if hit:
            spelled, option = word.partition("=")[0], next(o for o, d in sglang_options().items() if d == hit[0])
            means = "" if spelled == option else f" (SGLang reads it as {option})"
            raise CliError(f"{SOURCE}: {spelled}{means} is set by the shim: {RESERVED[hit[0]]}")
    return list(words)
