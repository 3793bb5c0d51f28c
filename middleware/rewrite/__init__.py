"""Request rules: what a vLLM body must become for SGLang. `route_rules.py` holds the route -> rules table."""
