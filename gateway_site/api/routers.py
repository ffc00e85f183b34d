"""The management API (`/api/v1/`), mounted from each app's router: the same services as the console and the YAML, called with
the admin key as the actor, so every change lands in the activity log."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from ninja import NinjaAPI
from ninja.operation import PathView

from audit.activity.api import router as activity_router
from audit.api import router as audit_router
from billing.api import router as billing_router
from gateway_site.api.auth import DEFAULT_ROLES, AdminKeyAuth
from gateway_site.api.errors import ApiError, install_error_handlers, refused_in_url
from gateway_site.api_docs import api_docs_view
from routing.api import router as routing_router
from routing.evaluations.api import router as evaluations_router
from routing.mcp_gateway.api import router as mcp_router
from routing.prompts.api import router as prompts_router
from tenants.api import router as tenancy_router
from tenants.keys_api import router as keys_router
from tenants.quotas.api import router as quotas_router
from tenants.quotas.approvals_api import router as approvals_router

DESCRIPTION = """\
Manage tenants, teams, members, virtual keys, rate limits, budgets, providers, deployments,
routes, task categories and MCP servers with their tool grants, cost pre-approval; read evaluation
scores, the activity log, the audit trail (search, export), the cost report and prompt usage.

Authenticate with an admin key: `Authorization: Bearer gwa-…` (create the first one with
`manage.py create_admin_key --platform --name …`). A tenant key sees only its tenant, in its role
(tenant_admin, compliance, finance or developer: what that role reaches in the console);
anything outside it answers 404, as if it did not exist. Errors are always
`{"error": {"code", "message", "fields"}}`. Guide: docs/management_api.md.
"""


def build_api() -> NinjaAPI:
    api = NinjaAPI(
        title="AI gateway: management API",
        version="1",
        description=DESCRIPTION,
        urls_namespace="management",
        auth=AdminKeyAuth(),
        docs_url=None,  # served at the stable /api/docs (gateway_site/urls.py)
        docs_decorator=api_docs_view,
    )
    # Each app owns its router; this is only where they are mounted.
    for router in (
        tenancy_router,
        keys_router,
        routing_router,
        quotas_router,
        approvals_router,
        activity_router,
        audit_router,
        billing_router,
        prompts_router,
        evaluations_router,
        mcp_router,
    ):
        api.add_router("/", router)
    install_error_handlers(api)
    return api


management_api = build_api()


def _query_names(path_view: PathView) -> dict[str, frozenset[str]]:
    """The query parameters each method of one path declares (its filters, limit and offset)."""
    names: dict[str, frozenset[str]] = {}
    for operation in path_view.operations:
        declared = frozenset(
            name
            for model in operation.signature.models
            if model.__ninja_param_source__ == "query"
            for name in model.__ninja_flatten_map__
        )
        for method in operation.methods:
            names[method] = declared
    return names


def _unknown_query(request: HttpRequest, declared: dict[str, frozenset[str]]) -> ApiError | None:
    """Ninja ignores a query parameter it does not declare, so `?tem=ops` (for `team`) would list
    every key of the tenant: a misspelt filter is refused rather than silently dropped."""
    allowed = declared.get(request.method or "", frozenset())
    unknown = sorted(set(request.GET) - allowed)
    if not unknown:
        return None
    known = ", ".join(sorted(allowed)) or "none"
    fields = [
        {"field": name[:64], "message": f"Unknown query parameter; this endpoint takes: {known}."}
        for name in unknown[:10]
    ]
    summary = ", ".join(repr(f["field"]) for f in fields)
    return ApiError(422, "validation_error", f"Unknown query parameter {summary}.", fields)


def _roles(path_view: PathView) -> dict[str, frozenset[str]]:
    """The tenant-key roles each method of one path is open to (gateway_site/api/auth.py)."""
    roles: dict[str, frozenset[str]] = {}
    for operation in path_view.operations:
        marked = getattr(operation.view_func, "api_roles", DEFAULT_ROLES)
        for method in operation.methods:
            roles[method] = marked
    return roles


def _path_view(view: Callable[..., HttpResponse]) -> PathView | None:
    """The PathView behind one of Ninja's URL callbacks (its view function closes over it);
    None for the API's other views (the schema and the docs)."""
    for cell in getattr(view, "__closure__", None) or ():
        if isinstance(cell.cell_contents, PathView):
            return cell.cell_contents
    return None


def _guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answers Ninja would give outside our format or too leniently: a NUL in the URL reaches
    handlers and the database (a 500), an unknown query parameter is ignored (a widened list),
    and a wrong method is answered in plain text past the exception handlers."""
    path_view = _path_view(view)
    declared = _query_names(path_view) if path_view is not None else None
    roles = _roles(path_view) if path_view is not None else {}

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = refused_in_url(request)
        if refused is None and declared is not None:
            refused = _unknown_query(request, declared)
        if refused is not None:
            return refused.response()
        request.api_roles = roles.get(request.method or "", DEFAULT_ROLES)  # type: ignore[attr-defined]
        response = view(request, *args, **kwargs)
        if response.status_code != 405:
            return response
        allowed = response.get("Allow", "")
        error = ApiError(
            405,
            "method_not_allowed",
            f"Method {request.method} is not allowed on {request.path}; use {allowed}.",
        ).response()
        error["Allow"] = allowed
        return error

    return wrapper


def management_urls() -> tuple[list[Any], str, str]:
    patterns, app_name, namespace = management_api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = _guarded(pattern.callback)
    return patterns, app_name, namespace
