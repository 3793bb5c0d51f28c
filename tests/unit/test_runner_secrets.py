"""The engine runner masks secret option values in every line the engine prints (real SGLang logs server_args)."""

from __future__ import annotations

import io

from shim.runner import pump, secret_values


def test_secret_values_in_both_spellings_and_nothing_else() -> None:
    command = ["python3", "-m", "sglang.launch_server", "--api-key", "sk-1", "--admin-api-key=adm-2",
               "--model-path", "m", "--hf-token", ""]  # fmt: skip
    assert secret_values(command) == (b"sk-1", b"adm-2")
    assert secret_values(["--model-path", "m"]) == ()


def test_pump_masks_secrets_and_prefixes_every_line() -> None:
    # The line SGLang 0.5.23 prints at start-up, shortened.
    source = io.BytesIO(b"[2026] server_args={'api_key': 'sk-1', 'admin_api_key': None}\nno newline sk-1")
    sink = io.BytesIO()
    pump(source, sink, b"[engine] ", (b"sk-1",))
    assert sink.getvalue() == (
        b"[engine] [2026] server_args={'api_key': '***', 'admin_api_key': None}\n[engine] no newline ***\n"
    )
