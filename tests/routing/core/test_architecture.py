"""The proxy core stays plain Python: no Django, no Celery, no other app."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "routing" / "core"
FORBIDDEN = (
    "django",
    "celery",
    "ninja",
    "tenants",
    "audit",
    "billing",
    "declarative",
    "gateway_site",
)


def test_the_core_imports_nothing_from_django_or_other_apps():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN or (top == "routing" and not name.startswith("routing.core")):
                    offenders.append(f"{path.relative_to(CORE.parent.parent)}: {name}")
    assert offenders == []
