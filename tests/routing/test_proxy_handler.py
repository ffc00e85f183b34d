"""The proxy's ASGI handler keeps URL matches of fixed `/v1/` paths: the same view, every time,
and never a stale one for a path with parameters or after the URLconf changed."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings
from django.urls import Resolver404, path

from gateway_site.request_lifecycle import ProxyASGIHandler


def _view(request: HttpRequest) -> HttpResponse:  # pragma: no cover - resolved, never called
    return HttpResponse()


urlpatterns = [path("v1/models", _view, name="other-models")]


def test_a_fixed_path_is_resolved_once_and_then_reused() -> None:
    handler = ProxyASGIHandler()
    first = handler.resolve_request(RequestFactory().get("/v1/models"))
    request = RequestFactory().get("/v1/models")
    again = handler.resolve_request(request)

    assert again is first
    assert request.resolver_match is first
    assert first.url_name and "models" in first.route


def test_a_path_with_parameters_is_resolved_each_time_with_its_own_values() -> None:
    handler = ProxyASGIHandler()
    one = handler.resolve_request(RequestFactory().get("/v1/responses/resp_one"))
    two = handler.resolve_request(RequestFactory().get("/v1/responses/resp_two"))

    assert one.kwargs == {"response_id": "resp_one"}
    assert two.kwargs == {"response_id": "resp_two"}
    assert not [key for key in handler._resolved if "resp_" in key[1]]


def test_unknown_paths_reach_the_apis_not_found_view_and_are_not_kept() -> None:
    handler = ProxyASGIHandler()
    for n in range(100):  # a scanner's paths cannot fill the worker's memory
        match = handler.resolve_request(RequestFactory().get(f"/v1/no-such-thing-{n}"))
        assert match.func.__name__ == "proxy_not_found"
        assert match.kwargs == {"rest": f"no-such-thing-{n}"}
    assert handler._resolved == {}
    with pytest.raises(Resolver404):
        handler.resolve_request(RequestFactory().get("/not-v1"))


def test_a_changed_urlconf_is_resolved_afresh() -> None:
    handler = ProxyASGIHandler()
    ours = handler.resolve_request(RequestFactory().get("/v1/models"))
    with override_settings(ROOT_URLCONF=__name__):
        other = handler.resolve_request(RequestFactory().get("/v1/models"))

    assert other.url_name == "other-models"
    assert ours.url_name != "other-models"
