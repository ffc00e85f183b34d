"""The one architecture test: the apps come from INSTALLED_APPS, the pure packages import no
Django, and imports only go down the layers (docs/architecture.md, ADR 0011).

A layer may import its own and lower layers. The few upward imports that remain are listed in
KNOWN_UPWARD with the reason; the list may only shrink: a new upward import fails, and so does an
entry that no longer occurs (remove it)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("gateway_site", "tenants", "routing", "audit", "billing")

# Plain Python: no Django, no Celery, no other app (only their own package and the stdlib/PyPI).
PURE = (
    "routing.core",
    "routing.guardrails.core",
    "routing.cache.core",
    "tenants.quotas.core",
    "tenants.quotas.tokens",
)
FRAMEWORKS = ("django", "celery", "ninja", "django_htmx")

# Lowest first. The kernel is what knows no app (gateway_site's helpers, the pure packages); the
# frames are the mechanisms every app's pages and API routers use (roles, navigation, the API's
# error format); the proxy is the hot path that composes the apps' steps; wiring mounts it all.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernel", ("gateway_site.env", "gateway_site.crypto", "gateway_site.bounds",
                "gateway_site.csv_safe", "gateway_site.db_threads", "gateway_site.memory",
                "gateway_site.snapshot", "gateway_site.proxy_settings", "gateway_site.redis_clients",
                "gateway_site.request_lifecycle", "gateway_site.log_format", "routing.errors", *PURE)),
    ("activity", ("audit.activity",)),
    ("tenants", ("tenants",)),
    ("frames", ("gateway_site.api", "gateway_site.api_docs", "gateway_site.console.access",
                "gateway_site.console.filters", "gateway_site.console.widgets", "gateway_site.console.nav",
                "gateway_site.api.common", "gateway_site.api.errors", "gateway_site.api.schemas",
                "gateway_site.api.auth", "gateway_site.api.models", "gateway_site.api.selectors",
                "gateway_site.api.services", "gateway_site.api.pagination")),
    ("audit", ("audit",)),
    ("contracts", ("routing", "tenants.quotas", "routing.guardrails", "routing.prompts")),
    ("records", ("billing", "routing.evaluations", "audit.observability")),
    ("proxy", ("routing.pipeline", "routing.call", "routing.caller", "routing.runtime", "routing.proxy_api",
               "routing.table", "routing.counting", "routing.task_category",
               "routing.guardrails.proxy", "routing.prompts.proxy", "routing.cache.proxy",
               "tenants.quotas.gate", "routing.responses_state.proxy", "routing.responses_native",
               # The MCP gateway's hot path: a governed tool call.
               "routing.mcp_gateway.endpoint", "routing.mcp_gateway.calls",
               "routing.mcp_gateway.guard", "routing.mcp_gateway.spend",
               # The operator's evaluation run goes through the proxy's adapters.
               "routing.evaluations.runner", "routing.evaluations.quality")),
    # Each app's presentation: its API router, pages, forms, URLs, app config and commands.
    ("pages", ()),
    # The beat schedule run in one process (the demo) drives every app's tasks: wiring too.
    ("wiring", ("gateway_site", "gateway_site.console", "gateway_site.api.routers",
                "audit.observability.periodic",
                "gateway_site.declarative")),
)  # fmt: skip

KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def _installed_apps() -> list[str]:
    ours = [name for name in settings.INSTALLED_APPS if name.split(".")[0] in ROOMS]
    return ours


_PAGES = re.compile(
    r"\.(api|keys_api|api_schemas|views|\w+_views|forms|urls|apps|admin|benchmark)(\.|$)"
)


@cache
def _layer_of(module: str) -> int | None:
    if module.split(".")[0] not in ROOMS:
        return None
    if ".management.commands." in module:  # entry points, like the URLs: they may use anything
        return len(LAYERS) - 1
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    pages = next(i for i, (name, _) in enumerate(LAYERS) if name == "pages")
    frames = next(i for i, (name, _) in enumerate(LAYERS) if name == "frames")
    if best is not None and best < pages and best != frames and _PAGES.search(module):
        return pages
    return best


def _modules() -> dict[str, Path]:
    found = {}
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            if "migrations" in path.parts or "__pycache__" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.M)


def _imports(path: Path) -> list[str]:
    # Only module-level and function-level absolute imports; TYPE_CHECKING blocks count too.
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError:  # pragma: no cover - the suite would not import it either
        return [m.group(1) or m.group(2) for m in _IMPORT.finditer(path.read_text())]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` imports the module, not the package.
            modules = [f"{node.module}.{alias.name}" for alias in node.names]
            known = _module_names()
            names += [m for m in modules if m in known] or [node.module]
    return names


@cache
def _module_names() -> frozenset[str]:
    return frozenset(_modules())


def test_every_installed_app_of_ours_has_a_layer() -> None:
    apps = _installed_apps()

    assert len(apps) >= 13
    assert [app for app in apps if _layer_of(app) is None] == []


def test_the_pure_packages_import_no_framework_and_no_other_app() -> None:
    offenders = []
    for module, path in _modules().items():
        package = next((p for p in PURE if module == p or module.startswith(p + ".")), None)
        if package is None:
            continue
        for name in _imports(path):
            top = name.split(".")[0]
            if top in FRAMEWORKS or (top in ROOMS and not name.startswith(package)):
                offenders.append(f"{module}: {name}")
    assert offenders == []


def test_imports_only_go_down_the_layers() -> None:
    upward: dict[tuple[str, str], list[str]] = {}
    for module, path in _modules().items():
        own = _layer_of(module)
        if own is None:
            continue
        for name in _imports(path):
            target = _layer_of(name)
            if target is not None and target > own:
                key = (LAYERS[own][0], LAYERS[target][0])
                upward.setdefault(key, []).append(f"{module} -> {name}")
    new = {k: v for k, v in upward.items() if k not in KNOWN_UPWARD}
    gone = [k for k in KNOWN_UPWARD if k not in upward]

    assert new == {}, "imports going up a layer:\n" + "\n".join(
        f"  {a} -> {b}: {', '.join(sorted(set(v)))}" for (a, b), v in new.items()
    )
    assert gone == [], f"no longer upward, remove from KNOWN_UPWARD: {gone}"


# The flows that assemble a proxied call's audit record. Every other step gets the read-only
# `Caller` and returns a typed result (routing/pipeline.py's docstring lists them).
RECORD_ASSEMBLERS = frozenset({"routing.pipeline", "routing.counting"})


def test_only_the_pipeline_holds_the_call_it_records() -> None:
    holders = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "routing.call"
                and any(alias.name == "Call" for alias in node.names)
                and module not in RECORD_ASSEMBLERS
            ):
                holders.append(module)
    assert holders == []


# Circles still to be cut (none): an entry here fails once the circle is gone.
KNOWN_CIRCLES: frozenset[frozenset[str]] = frozenset()


def _import_circles() -> list[frozenset[str]]:
    """Groups of modules that import each other, directly or around a loop, counting imports
    inside functions and under TYPE_CHECKING: a circle hidden from the interpreter still ties
    the modules together for whoever must change one of them (Tarjan's strongly connected
    components over the module graph)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in _imports(path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            # A package's own modules importing it (its __init__) is not a circle of design.
            if name and name != module and not module.startswith(name + "."):
                targets.add(name)
        graph[module] = targets
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(frozenset(group))

    for module in graph:
        if module not in index:
            visit(module)
    return circles


def test_no_modules_import_each_other_around_a_circle() -> None:
    circles = _import_circles()
    new = [sorted(c) for c in circles if c not in KNOWN_CIRCLES]
    gone = [sorted(c) for c in KNOWN_CIRCLES if c not in circles]

    assert new == [], f"import circles: {new}"
    assert gone == [], f"no longer a circle, remove from KNOWN_CIRCLES: {gone}"


def test_no_circle_crosses_two_apps() -> None:
    apps = sorted(_installed_apps(), key=len, reverse=True)

    def app_of(module: str) -> str:
        return next((a for a in apps if module == a or module.startswith(a + ".")), module)

    crossing = [sorted(c) for c in _import_circles() if len({app_of(m) for m in c}) > 1]
    assert crossing == []
