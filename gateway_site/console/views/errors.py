"""The console's own pages for a bad request, a refusal, a missing page and a server error (Django's
are unstyled), and the guard that refuses input the database cannot store before any view reads it."""

from __future__ import annotations

import logging

from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger(__name__)

NUL_REASON = "The address contains a NUL character (%00), which no name, id or filter may hold."


def bad_request(
    request: HttpRequest, exception: Exception | None = None, reason: str = ""
) -> HttpResponse:
    return render(request, "console/bad_request.html", {"reason": reason}, status=400)


# The last resort when even the styled page cannot be rendered (the database is down and the frame
# cannot read the user's tenants): still a page in the console's look, with no detail.
_SERVER_ERROR_FALLBACK = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Something went wrong · AI Gateway</title><link rel="stylesheet" href="/static/console/console.css">
</head><body><header class="topbar"><a class="brand" href="/console/">AI Gateway <span>console</span></a>
</header><div class="layout layout--single"><main id="main"><h1>Something went wrong</h1>
<p>The gateway could not show this page. Nothing you sent was lost; try again in a moment.</p>
<p><a href="/console/">Back to the console</a></p></main></div></body></html>"""


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # A view's own Http404 says what is missing ("no such record in this tenant"); the resolver's
    # (an unknown address) carries a dict of the patterns tried, which is not for the reader.
    detail = ""
    if type(exception) is Http404 and exception.args and isinstance(exception.args[0], str):
        detail = exception.args[0]
    return render(request, "console/not_found.html", {"status": 404, "detail": detail}, status=404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "console/denied.html", {"status": 403}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form sent from a stale page (or from elsewhere), said plainly."""
    message = (
        "This form could not be accepted: the page was open too long or you signed in again "
        "elsewhere. Reload the page and send it again."
    )
    return render(request, "console/denied.html", {"status": 403, "reason": message}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    try:
        return render(request, "console/server_error.html", {"status": 500}, status=500)
    except Exception:  # the frame itself failed (e.g. no database): the static page
        logger.exception("the styled server error page could not be rendered")
        return HttpResponseServerError(_SERVER_ERROR_FALLBACK)


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
