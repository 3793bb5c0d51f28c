"""`python -m middleware --config PATH --host 127.0.0.1 --port P [--workers N]`: run the app under uvicorn."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import uvicorn

from middleware.app import CONFIG_ENV, create_app
from middleware.config import MiddlewareConfig

PROGRAM = "middleware"
# Longer than haproxy's idle reuse of server connections (pool-purge-delay 5 s, http-keep-alive 10 s), so
# haproxy never sends on a socket uvicorn is closing (sporadic 502s); minutes, not hours (uvicorn leaks
# a timer per abnormally closed connection).
TIMEOUT_KEEP_ALIVE_S = 65
LOG_FORMAT = f"%(asctime)s {PROGRAM} %(levelname)s %(name)s: %(message)s"


def log_config(level: str) -> dict[str, Any]:
    """Every line carries the program name: supervisord interleaves three programs on one stdout."""
    level = level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {"stdout": handler},
        "loggers": {
            name: {"handlers": ["stdout"], "level": level, "propagate": False}
            for name in (PROGRAM, "uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__)
    parser.add_argument("--config", required=True, help="MiddlewareConfig JSON written by the shim")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default=None, help="default: the config's log_level")
    parser.add_argument("--access-log", action="store_true", help="log every request (off: haproxy logs them)")
    return parser.parse_args(argv)


def uvicorn_options(args: argparse.Namespace, config: MiddlewareConfig) -> dict[str, Any]:
    level = (args.log_level or config.log_level).lower()
    return {
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        # "auto" picks uvloop and httptools when installed (uvicorn[standard]).
        "loop": "auto",
        "http": "auto",
        "timeout_keep_alive": TIMEOUT_KEEP_ALIVE_S,
        # Only haproxy connects, and it adds no X-Forwarded-* headers: uvicorn's proxy-headers wrapper would be
        # one more ASGI layer per request for nothing.
        "proxy_headers": False,
        "access_log": args.access_log,
        "log_config": log_config(level),
        "log_level": level,
        "lifespan": "on",
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = MiddlewareConfig.load(args.config)
    options = uvicorn_options(args, config)
    if args.workers > 1:
        # Worker processes import the app by name and rebuild it from the same file.
        os.environ[CONFIG_ENV] = os.path.abspath(args.config)
        uvicorn.run("middleware.app:create_app_from_env", factory=True, **options)
    else:
        uvicorn.run(create_app(config), **options)


if __name__ == "__main__":
    main()
