"""The seam through which the app reports what happened to each request.

`create_app(..., observer=...)` takes any object with these methods. By default it is the app's
`MetricsBridge` (middleware/metrics/bridge.py), which exposes the counts on /metrics as `vllm_shim:*` counters.
`NullObserver` is for components used without an app (`ApiKeyAuth` on its own), so they never check for None.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    def count_request(self, route: str, status: int) -> None: ...

    def count_rewrite(self, rule: str) -> None: ...

    def count_upstream_error(self, kind: str) -> None: ...

    def count_disconnect(self, route: str) -> None: ...

    def count_pd_room(self, role: str, event: str) -> None: ...
    def count_rule_failure(self, rule: str, status: int) -> None: ...


class NullObserver:
    """Counts nothing."""

    def count_request(self, route: str, status: int) -> None:
        pass

    def count_rewrite(self, rule: str) -> None:
        pass

    def count_upstream_error(self, kind: str) -> None:
        pass

    def count_disconnect(self, route: str) -> None:
        pass

    def count_pd_room(self, role: str, event: str) -> None:
        pass

    def count_rule_failure(self, rule: str, status: int) -> None:
        pass
