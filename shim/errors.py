"""The one error the command line can raise: it becomes `vllm: error: <message>` and exit status 2."""


class CliError(Exception):
    """An invalid or contradictory command line, reported before anything starts."""

    exit_code = 2
