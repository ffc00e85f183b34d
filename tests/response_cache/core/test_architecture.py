"""The cache's core stays plain Python: no Django, no other app but the proxy core's types."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "response_cache" / "core"
ALLOWED_APPS = ("routing.core", "response_cache.core")
APPS = ("django", "celery", "ninja", "tenants", "audit", "billing", "gateway_site", "routing")


def test_the_cache_core_imports_nothing_from_django_or_other_apps():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in APPS and not name.startswith(ALLOWED_APPS):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
