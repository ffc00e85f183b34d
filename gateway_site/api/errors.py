"""The management API's one error format: `{"error": {"code", "message", "fields"}}`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from gateway_site.bounds import NUL_MESSAGE
from tenants.services import TenancyError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}

    def response(self) -> HttpResponse:
        return JsonResponse(
            self.body(), status=self.status, json_dumps_params={"ensure_ascii": False}
        )


def not_found(what: str) -> ApiError:
    # The same answer whether it does not exist or belongs to someone else: no probing.
    return ApiError(404, "not_found", f"{what} does not exist or is outside this key's scope.")


def platform_only() -> ApiError:
    return ApiError(
        403, "platform_scope_required", "This endpoint needs a platform admin key (gwa-…)."
    )


def invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422, "validation_error", f"{field}: {message}", [{"field": field, "message": message}]
    )


def invalid_pins(problems: dict[str, str]) -> ApiError:
    """Every refused pin at once, each named by its path (`model_pins.<model>`)."""
    fields = [{"field": f"model_pins.{model}", "message": why} for model, why in problems.items()]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(422, "validation_error", f"Invalid request: {summary}", fields)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def unstorable(exc: DataError) -> ApiError:
    """A 400 naming the column when PostgreSQL says which one, and why in its own words."""
    diag = getattr(exc.__cause__, "diag", None)
    column = getattr(diag, "column_name", None) or ""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "value out of range"
    fields = [{"field": column, "message": reason}] if column else []
    return ApiError(
        400,
        "invalid_value",
        f"A value cannot be stored ({reason}); check its length and range.",
        fields,
    )


def refused_in_url(request: HttpRequest) -> ApiError | None:
    """A NUL in the path or the query: no name, slug or filter may hold one (PostgreSQL refuses
    them in text), so it is refused before any handler reads it."""
    if "\x00" in request.path:
        return ApiError(
            400,
            "invalid_value",
            "The path must not contain NUL characters (%00).",
            [{"field": "path", "message": NUL_MESSAGE}],
        )
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return ApiError(
                400,
                "invalid_value",
                f"Query parameter {name!r} must not contain NUL characters.",
                [{"field": name.replace("\x00", ""), "message": NUL_MESSAGE}],
            )
    return None


def _field_path(loc: Sequence[Any]) -> str:
    """('body', 'payload', 'targets', 0, 'weight') → 'targets[0].weight'; ('query', 'team') → 'team'."""
    parts = list(loc[2:] if loc and loc[0] == "body" else loc[1:])
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or str(loc[0] if loc else "body")


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = [{"field": _field_path(e.get("loc", ())), "message": e["msg"]} for e in exc.errors]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(422, "validation_error", f"Invalid request: {summary}", fields).response()


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return exc.response()

    @api.exception_handler(TenancyError)
    def _tenancy_refused(request: HttpRequest, exc: TenancyError) -> HttpResponse:
        status = {"conflict": 409, "outside_scope": 403}.get(exc.code, 422)
        code = {"outside_scope": "user_outside_scope", "invalid": "validation_error"}
        fields = [{"field": exc.field, "message": exc.message}] if exc.field else []
        return ApiError(status, code.get(exc.code, exc.code), exc.message, fields).response()

    @api.exception_handler(AuthenticationError)
    def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return ApiError(
            401,
            "missing_admin_key",
            "Missing admin key: send 'Authorization: Bearer gwa-…'.",
        ).response()

    api.exception_handler(ValidationError)(_validation_error)

    @api.exception_handler(DjangoValidationError)
    def _service_refused(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        # A service's own check (e.g. an unknown timezone): the caller's input, so a 422.
        message = "; ".join(exc.messages)
        return ApiError(422, "validation_error", message).response()

    @api.exception_handler(IntegrityError)
    def _integrity(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
        # Two writers raced past the handler's own check: the database kept exactly one.
        return conflict(
            "This conflicts with a change made at the same moment; read and retry."
        ).response()

    @api.exception_handler(DataError)
    def _unstorable(request: HttpRequest, exc: DataError) -> HttpResponse:
        # The database refused a value its column cannot hold (a NUL, a number past the column,
        # text longer than it): the caller's input, which a schema bound should have caught.
        logger.warning("database refused a value in %s %s: %s", request.method, request.path, exc)
        return unstorable(exc).response()

    @api.exception_handler(OverflowError)
    def _overflow(request: HttpRequest, exc: OverflowError) -> HttpResponse:
        return ApiError(400, "invalid_value", f"A number is out of range: {exc}.").response()

    @api.exception_handler(RequestDataTooBig)
    def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return ApiError(
            413, "request_too_large", f"The request body is larger than the limit of {limit} bytes."
        ).response()

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400 and "parse" in str(exc):
            return ApiError(
                400,
                "invalid_json",
                "Cannot parse the request body: send JSON with 'Content-Type: application/json'.",
            ).response()
        return ApiError(exc.status_code, "bad_request", str(exc)).response()

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return ApiError(
            404, "not_found", f"No endpoint {request.method} {request.path}."
        ).response()

    @api.exception_handler(Exception)
    def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("unexpected error in %s %s", request.method, request.path)
        return ApiError(
            500, "internal_error", "The gateway failed unexpectedly; the error was logged."
        ).response()


@csrf_exempt  # keys, never cookies: there is no session to forge
def unknown_endpoint(request: HttpRequest, rest: str) -> HttpResponse:
    return ApiError(
        404,
        "not_found",
        f"No endpoint {request.method} /api/{rest}: see /api/docs for the management API.",
    ).response()
