"""The gateway's benchmark (`make bench`): overhead of the gateway over calling the provider directly.

Everything runs on this machine against 127.0.0.1: the bundled mock provider, the gateway
(one uvicorn worker, PostgreSQL, audit on) and the load generators. `python -m bench --help`.
"""
