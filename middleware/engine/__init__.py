"""The connection to SGLang: `client.py` (requests, errors) over `pool.py` (keep-alive connections)."""
