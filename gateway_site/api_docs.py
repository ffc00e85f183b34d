"""The OpenAPI pages and schemas (`/v1/docs`, `/api/docs`, their `openapi.json`), behind a switch.

They map every endpoint and parameter, so they are off unless GATEWAY_API_DOCS is on (its default
is on outside production). Off, they answer 404 in the API's own error format, as an unknown
path does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from gateway_site.api.errors import ApiError
from routing.errors import GatewayError

View = Callable[..., HttpResponse]


def api_docs_view(view: View) -> View:
    @wraps(view)
    def switched(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.GATEWAY_API_DOCS:
            return view(request, *args, **kwargs)
        message = f"No endpoint {request.method} {request.path}."
        if request.path.startswith("/v1/"):
            return GatewayError(404, message, code="unknown_endpoint").response()
        return ApiError(404, "not_found", message).response()

    return switched
