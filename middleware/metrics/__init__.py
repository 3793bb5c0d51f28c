"""GET /metrics: parse SGLang's page, translate it to vLLM's names, serve both (bridge.py, route.py)."""
