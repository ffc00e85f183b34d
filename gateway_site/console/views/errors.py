"""The console's own pages for a bad request and a missing page (Django's are unstyled), and the
guard that refuses input the database cannot store before any view reads it."""

from __future__ import annotations

from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

NUL_REASON = "The address contains a NUL character (%00), which no name, id or filter may hold."


def bad_request(
    request: HttpRequest, exception: Exception | None = None, reason: str = ""
) -> HttpResponse:
    return render(request, "console/bad_request.html", {"reason": reason}, status=400)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "console/not_found.html", {"status": 404}, status=404)


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    return any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.GET.lists())


class UnstorableInputMiddleware(MiddlewareMixin):  # the mixin serves sync and async stacks
    """Console pages only (the APIs answer in their own formats): a NUL in the path or query is
    a 400 page before a view passes it to PostgreSQL, which refuses NUL in text; a value the
    database still refuses (DataError) is a 400 page too, not a 500."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if request.path.startswith("/console/") and _has_nul(request):
            return bad_request(request, reason=NUL_REASON)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith("/console/") and isinstance(exception, DataError):
            return bad_request(request, reason="A value is too long or out of range.")
        return None
