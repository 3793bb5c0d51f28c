"""Process lifecycle: parse, log the config, "load weights" (port closed), serve, and the process-level faults."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shim.pod.engine_launch import SECRETS_ENV, engine_key_from_env
from sim import SGLANG_VERSION
from sim.knobs import Settings, SettingsError
from sim.sglang_argv import parse_args
from sim.sglang_options import SimConfig, describe_ignored

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("sim")
LOG_FORMAT = "%(asctime)s sim %(levelname)s %(message)s"
GRACEFUL_SHUTDOWN_SECONDS = 3  # hung streams (fault hang_mid_stream) must not block SIGTERM forever


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)


def _crash(seconds: float) -> None:
    log.error("fault crash_after:%s: exiting with status 1", seconds)
    logging.shutdown()
    os._exit(1)  # a crash, not a shutdown: no cleanup, no graceful close of connections


def _load(settings: Settings) -> bool:
    """Emulate weight loading and CUDA graph capture: nothing listens yet, so clients get connection refused."""
    fault = settings.parsed_fault()
    log.info("Loading weights (simulated, %.1f s) ...", settings.load_seconds)
    if fault.kind == "crash_on_load":
        time.sleep(settings.load_seconds / 2)
        log.error("fault crash_on_load: simulated failure while loading weights")
        return False
    time.sleep(settings.load_seconds)
    return True


def _uvicorn_config(cfg: SimConfig, app: object) -> uvicorn.Config:
    import uvicorn

    access_level = (cfg.log_level_http or cfg.log_level).upper()
    logging.getLogger("uvicorn.access").setLevel(access_level)
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=cfg.host, port=cfg.port, loop="auto", http="auto", ws="none", log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS, ssl_keyfile=cfg.ssl_keyfile,
        ssl_certfile=cfg.ssl_certfile,
    )


def _rank_health_app(enable_metrics: bool) -> Any:
    from prometheus_client import make_asgi_app
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    async def ok(_request: Any) -> Response:
        return Response(status_code=200)

    routes: list[Any] = [Route(path, ok) for path in ("/ping", "/health", "/health_generate")]
    if enable_metrics:
        # As SGLang mounts it: /metrics itself, no redirect to /metrics/.
        metrics = Mount("/metrics", make_asgi_app())
        metrics.path_regex = re.compile("^/metrics(?P<path>.*)$")
        routes.append(metrics)
    return Starlette(routes=routes)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    environ = os.environ if environ is None else environ
    try:
        settings = Settings.from_env(environ)
    except SettingsError as e:
        log.error("%s", e)
        return 2
    if environ.get(SECRETS_ENV):
        # As shim/pod/engine_launch.py does for SGLang: the internal key from the secrets file, logs scrubbed.
        args.api_key, _ = engine_key_from_env(environ)
    # SGLang logs its whole ServerArgs, secrets included, at INFO on start; so does the simulator, so a
    # secret that reaches the engine's arguments shows in the pod log here as it would with SGLang.
    log.info(f"server_args={vars(args)!r}")
    cfg = SimConfig.from_args(args)
    log.info("simulated SGLang %s (test double, no model loaded): %s", SGLANG_VERSION, cfg.describe())
    log.info("accepted but not simulated: %s", describe_ignored(args))
    log.info("knobs: %s", settings)
    if not _load(settings):
        return 1
    if cfg.node_rank >= 1:
        # SGLang's rank >= 1 nodes run no API: only launch_dummy_health_check_server (/ping, /health,
        # /health_generate, and /metrics with --enable-metrics) on --host/--port.
        log.info("node rank %d serves no API, like SGLang: health server only", cfg.node_rank)
        import uvicorn

        uvicorn.Server(_uvicorn_config(cfg, _rank_health_app(bool(args.enable_metrics)))).run()
        return 0
    # The web stack is imported only now: a crash_on_load run stays cheap, and the import time (seconds on a busy
    # machine) counts as loading, while the port is still closed.
    import uvicorn

    from sim.app import create_app

    app = create_app(args, settings)
    fault = settings.parsed_fault()
    if fault.kind == "crash_after":
        threading.Timer(fault.seconds, _crash, args=(fault.seconds,)).start()
    uvicorn.Server(_uvicorn_config(cfg, app)).run()
    return 0
