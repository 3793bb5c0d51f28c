"""Run the real middleware with uvicorn options changed, to weigh a lever without editing the product.

    python bench/mw_variant.py --loop asyncio --http h11 -- --config C --host 127.0.0.1 --port P

Everything after `--` goes to `python -m middleware` unchanged; the options before it override what
`middleware.__main__.uvicorn_options` chose. `--no-orjson` makes `orjson` unimportable-equivalent by
swapping in a json-backed shim (to weigh orjson against the standard library).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if os.environ.get("VLLM_BENCH_MIDDLEWARE_SOURCE"):  # an A/B run against a saved copy of the package
    sys.path.insert(0, os.environ["VLLM_BENCH_MIDDLEWARE_SOURCE"])


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loop", default=None, help="uvicorn loop: auto, asyncio, uvloop")
    parser.add_argument("--http", default=None, help="uvicorn http: auto, h11, httptools")
    parser.add_argument("--timeout-keep-alive", type=int, default=None)
    parser.add_argument("--no-orjson", action="store_true")
    ours = parser.parse_args(argv[:split])
    if ours.no_orjson:
        _json_backed_orjson()

    import uvicorn

    from middleware import __main__ as entry
    from middleware.app import create_app
    from middleware.config import MiddlewareConfig

    args = entry.parse_args(argv[split + 1 :])
    config = MiddlewareConfig.load(args.config)
    options: dict[str, Any] = entry.uvicorn_options(args, config)
    for key in ("loop", "http", "timeout_keep_alive"):
        value = getattr(ours, key)
        if value is not None:
            options[key] = value
    if args.workers > 1:
        raise SystemExit("mw_variant.py runs one worker; use run.py --workers for more")
    uvicorn.run(create_app(config), **options)


def _json_backed_orjson() -> None:
    """Replace orjson by the standard json module behind orjson's API (loads, dumps -> bytes)."""
    import json
    import types

    shim = types.ModuleType("orjson")

    class JSONDecodeError(json.JSONDecodeError):
        pass

    def loads(data: bytes | str) -> Any:
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise JSONDecodeError(exc.msg, exc.doc, exc.pos) from None
        except UnicodeDecodeError as exc:
            raise JSONDecodeError(str(exc), "", 0) from None

    def dumps(obj: Any, option: int = 0, default: Any = None) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=default).encode()

    shim.loads = loads  # type: ignore[attr-defined]
    shim.dumps = dumps  # type: ignore[attr-defined]
    shim.JSONDecodeError = JSONDecodeError  # type: ignore[attr-defined]
    for name in ("OPT_SORT_KEYS", "OPT_INDENT_2", "OPT_NON_STR_KEYS", "OPT_APPEND_NEWLINE", "OPT_SERIALIZE_NUMPY"):
        setattr(shim, name, 0)
    sys.modules["orjson"] = shim


if __name__ == "__main__":
    main()
