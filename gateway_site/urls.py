from functools import partial

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from ninja.openapi.views import openapi_view

from audit.observability.views import metrics, readyz
from gateway_site.api.errors import unknown_endpoint
from gateway_site.api.routers import management_api, management_urls
from gateway_site.api_docs import api_docs_view
from routing.errors import GatewayError
from routing.proxy_api import proxy_api
from routing.wire import AnthropicWire


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@csrf_exempt  # the proxy API authenticates by key, never by cookie
def proxy_not_found(request: HttpRequest, rest: str) -> HttpResponse:
    # An Anthropic client (a path of its Messages API, or the `anthropic-version` its SDKs send
    # on every call) reads only Anthropic's error format.
    anthropic = rest.startswith("messages/") or bool(request.headers.get("anthropic-version"))
    return GatewayError(
        404,
        f"No endpoint {request.method} /v1/{rest}: see /v1/docs for the gateway's API.",
        code="unknown_endpoint",
    ).response(wire=AnthropicWire() if anthropic else None)


# Outside the APIs (which answer in their own formats), errors are the console's styled pages.
handler400 = "gateway_site.console.views.errors.bad_request"
handler403 = "gateway_site.console.views.errors.forbidden"
handler404 = "gateway_site.console.views.errors.page_not_found"
handler500 = "gateway_site.console.views.errors.server_error"

urlpatterns = [
    path("v1/", proxy_api.urls),
    # [\s\S] and \Z: a newline (%0A) in the path is still this API's 404, in its format.
    re_path(r"^v1/(?P<rest>[\s\S]*)\Z", proxy_not_found),
    path("api/v1/", management_urls()),
    path(
        "api/docs",
        api_docs_view(partial(openapi_view, api=management_api)),
        name="management-docs",
    ),
    re_path(r"^api/(?P<rest>[\s\S]*)\Z", unknown_endpoint),
    path("healthz", healthz),
    path("readyz", readyz),
    path("metrics", metrics),
    path("admin/", admin.site.urls),
    path("console/t/<slug:tenant_slug>/prompts/", include("routing.prompts.urls")),
    path("console/t/<slug:tenant_slug>/compliance/", include("audit.urls")),
    path("console/t/<slug:tenant_slug>/limits/", include("tenants.quotas.urls")),
    path("console/t/<slug:tenant_slug>/routing-quality/", include("routing.evaluations.urls")),
    path("console/", include("gateway_site.console.urls")),
    path("console/t/<slug:tenant_slug>/finance/", include("billing.urls")),
    path("console/t/<slug:tenant_slug>/alerts/", include("audit.observability.urls")),
    path("console/t/<slug:tenant_slug>/cache/", include("routing.cache.urls")),
    path("console/t/<slug:tenant_slug>/mcp/", include("routing.mcp_gateway.urls")),
    path("console/t/<slug:tenant_slug>/guardrails/", include("routing.guardrails.urls")),
    path("console/t/<slug:tenant_slug>/platform/", include("routing.urls")),
    path("", RedirectView.as_view(pattern_name="console:home", permanent=False)),
]
