"""What a worker loads before its first request: nothing a request of a tenant without the
feature needs (issue: memory per worker). Each package named here cost the worker's memory at
start-up before it was loaded on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# package → the feature that loads it on first use
LOADED_ON_FIRST_USE = {
    "mcp": "the MCP endpoint (about 20 MiB): at start-up only if an MCP server is configured",
    "tldextract": "Presidio's e-mail recognizer, with the first PII policy",
    "requests": "tldextract's HTTP client, likewise",
    "numpy": "the injection classifier's first use, or a semantic cache route's first lookup",
}


def test_the_asgi_application_loads_no_feature_a_request_may_not_use() -> None:
    probe = (
        "import json, sys; import gateway_site.asgi; "
        f"print(json.dumps([m for m in {sorted(LOADED_ON_FIRST_USE)!r} if m in sys.modules]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway_site.settings"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])

    assert loaded == [], {name: LOADED_ON_FIRST_USE[name] for name in loaded}
