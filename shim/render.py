"""Plan → {file name: text}: supervisord.conf, haproxy.cfg, haproxy.state, middleware.json. Pure."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import jinja2

from middleware.shared_state import initial_text
from shim.data_files import data_text
from shim.errors import CliError
from shim.plan import ENGINE_SECRETS_FILE, MIDDLEWARE_STATE_FILE, Plan

# SGLang's /health generates one token when idle (~1 s) and answers at once when busy. Two missed 5 s
# checks mark it DOWN: a dead engine shows in ~3 s, a wedged one in ~14 s, and one slow answer under load
# never flaps /health (docs/operations.md has the arithmetic against the Kubernetes probes).
CHECK_INTER = "2s"
CHECK_TIMEOUT = "5s"
CHECK_FALL = 2
# Longest silence allowed on a connection: a non-streaming generation is silent until it is done.
GENERATION_TIMEOUT = "1h"
ENGINE_STOP_SECONDS = 30
HAPROXY_ERRORS = {
    400: ("Bad Request", "The request could not be parsed."),
    408: ("Request Timeout", "The request was not received in time."),
    500: ("Internal Server Error", "The server had an error while processing your request."),
    502: ("Bad Gateway", "The server is restarting; please retry."),
    503: ("Service Unavailable", "The server is not ready; please retry."),
    504: ("Gateway Timeout", "The server did not answer in time."),
}
HAPROXY_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight \
srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state \
bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr \
srv_agent_addr srv_agent_port
0 engine 0 engine 127.0.0.1 0 0 1 1 0 1 0 0 6 0 0 0 - {middleware_port} - 0 0 - - 0
0 middleware 0 middleware 127.0.0.1 0 0 1 1 0 1 0 0 6 0 0 0 - {middleware_port} - 0 0 - - 0
"""


HEADLESS_STATE = HAPROXY_STATE.split("0 engine ")[0] + (
    "0 engine 0 engine 127.0.0.1 0 0 1 1 0 1 0 0 6 0 0 0 - {engine_port} - 0 0 - - 0\n"
)


@dataclass(frozen=True)
class Program:
    name: str
    command: str
    priority: int
    autorestart: str
    startsecs: int
    startretries: int
    stopsignal: str
    stopwaitsecs: int
    environment: str = 'PYTHONUNBUFFERED="1"'


def supervisor_command(words: Sequence[str]) -> str:
    """Words → a supervisord `command=` value: shell-quoted, `%` escaped, and never cut by an ini comment."""
    line = shlex.join(words)
    if " ;" in line or "\n" in line:
        raise CliError(f"cannot run a command containing ' ;' or a newline under supervisord: {line[:80]}")
    return line.replace("%", "%%")


def _bind(plan: Plan) -> str:
    port = plan.ports.public
    # No --host means every interface, as in vLLM; haproxy's ":port" is every IPv4 address.
    return f"{plan.host or ''}:{port}"


def _bootstrap(plan: Plan) -> tuple[str, int] | None:
    """A P/D prefill pod: (public bind, SGLang's loopback bootstrap port) for haproxy's TCP relay."""
    if plan.pd_bootstrap is None:
        return None
    public, engine = plan.pd_bootstrap
    return f"{plan.host or ''}:{public}", engine


def programs(plan: Plan) -> list[Program]:
    run = plan.run_dir
    # A headless worker carries no API traffic: nothing to drain before SGLang stops.
    drain = 0 if plan.headless else plan.drain_seconds
    haproxy = [plan.haproxy, "-W", "-db", "-f", f"{run}/haproxy.cfg"]
    middleware = [plan.python, "-m", "middleware", "--config", f"{run}/middleware.json", "--host", "127.0.0.1"]
    middleware += ["--port", str(plan.ports.middleware), "--workers", str(plan.middleware_workers)]
    engine = [plan.python, "-m", "shim.pod.engine_wrapper", "--name", "engine", "--drain-pidfile", f"{run}/haproxy.pid"]
    engine += ["--drain-seconds", str(drain), "--stop-seconds", str(ENGINE_STOP_SECONDS)]
    engine += ["--secrets-file", f"{run}/{ENGINE_SECRETS_FILE}", "--"]
    engine += [*plan.engine_program, *plan.engine_args]
    if plan.headless:
        # A worker node serves no API: no middleware; haproxy answers the probes from SGLang's health server.
        return [
            Program("haproxy", supervisor_command(haproxy), 10, "true", 1, 3, "USR1", drain + 5),
            Program("engine", supervisor_command(engine), 30, "false", 1, 0, "TERM", drain + ENGINE_STOP_SECONDS + 10),
        ]
    return [
        # USR1 is haproxy's soft stop: unbind, let in-flight requests finish (bounded by hard-stop-after).
        Program("haproxy", supervisor_command(haproxy), 10, "true", 1, 3, "USR1", drain + 5),
        Program("middleware", supervisor_command(middleware), 20, "true", 1, 3, "TERM", 15),
        # The engine is never restarted in place: a crash takes the pod down (failfast) so Kubernetes
        # recreates it with fresh GPU memory and a visible restart count.
        Program("engine", supervisor_command(engine), 30, "false", 1, 0, "TERM", drain + ENGINE_STOP_SECONDS + 10),
    ]


def _environment() -> jinja2.Environment:
    # Not HTML: no autoescape. StrictUndefined turns a missing plan value into an error, not an empty line.
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: data_text("shim.templates", name)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


def engine_secrets(plan: Plan, engine_key: str) -> dict[str, str]:
    """The engine secrets file, {ENGINE_SECRETS_FILE: text}: the internal key the engine runs with and the
    middleware sends, and the engine's secret environment. The caller draws the key (a fresh one per start)."""
    if not engine_key:
        raise ValueError("the engine key must not be empty")
    text = json.dumps({"api_key": engine_key, "env": dict(plan.engine_env)}, indent=2, sort_keys=True)
    return {ENGINE_SECRETS_FILE: text + "\n"}


def render(plan: Plan, *, as_root: bool = False) -> dict[str, str]:
    env = _environment()
    listener = supervisor_command([plan.python, "-m", "shim.pod.failfast", "--critical", "engine"])
    supervisord = env.get_template("supervisord.conf.j2").render(
        run_dir=plan.run_dir, programs=programs(plan), listener_command=listener, as_root=as_root
    )
    haproxy = env.get_template("haproxy.cfg.j2").render(
        run_dir=plan.run_dir,
        drain_seconds=plan.drain_seconds,
        bind=_bind(plan),
        middleware_port=plan.ports.middleware,
        engine_port=plan.ports.engine,
        headless=plan.headless,
        generation_timeout=GENERATION_TIMEOUT,
        check_timeout=CHECK_TIMEOUT,
        check_inter=CHECK_INTER,
        check_fall=CHECK_FALL,
        haproxy_errors=HAPROXY_ERRORS,
        bootstrap=_bootstrap(plan),
    )
    state = HAPROXY_STATE.format(middleware_port=plan.ports.middleware)
    if plan.headless:
        state = HEADLESS_STATE.format(engine_port=plan.ports.engine)
    return {
        "supervisord.conf": supervisord,
        "haproxy.cfg": haproxy,
        "haproxy.state": state,
        "middleware.json": plan.middleware.to_json() + "\n",
        # Rewritten at every start: a new engine has released nothing.
        MIDDLEWARE_STATE_FILE: initial_text(),
    }
