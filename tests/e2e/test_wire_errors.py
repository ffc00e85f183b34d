"""Errors a real client meets beyond the endpoints' own flows: each in the format of the API
the client called, with the status that client's SDK reads correctly."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

VERSION = "2023-06-01"


@pytest.mark.parametrize("path", ["/messages/batches", "/messages/batches/msgbatch_1/results"])
def test_an_unknown_endpoint_of_anthropics_api_answers_in_anthropics_format(gateway, world, path):
    response = httpx.post(
        gateway.api_url + path,
        headers={"x-api-key": world.key, "anthropic-version": VERSION},
        json={"requests": []},
        timeout=30,
    )
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["type"] == "error", body
    assert body["error"]["type"] == "not_found_error"
    assert "No endpoint" in body["error"]["message"]


def test_the_anthropic_sdk_reads_an_unknown_endpoints_message(gateway, world):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=world.key, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.batches.retrieve("msgbatch_1")
    assert raised.value.body["error"]["type"] == "not_found_error"
    # The legacy Completions API too: the client is Anthropic's, so is the format.
    response = httpx.post(
        gateway.api_url + "/complete",
        headers={"x-api-key": world.key, "anthropic-version": VERSION},
        json={},
        timeout=30,
    )
    assert response.status_code == 404
    assert response.json()["type"] == "error"


def test_an_unknown_endpoint_still_answers_openai_clients_in_openais_format(gateway, world):
    response = httpx.post(
        gateway.api_url + "/batches",
        headers={"authorization": f"Bearer {world.key}"},
        json={},
        timeout=30,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_endpoint"


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("model", ["demo", "claude-fallback"])
def test_a_provider_refusing_the_gateways_credentials_is_no_client_auth_error(
    gateway, world, model, status
):
    """The client's key is good: a 401/403 from the provider is about the gateway's own provider
    key (whose masked form providers echo back), so the client gets a 502, never a 401/403 that
    makes its SDK or agent ask for a new key."""
    from tests.conftest import wait_for_record

    text = f"hi [mock status={status}]"
    for path, body, headers in [
        ("/chat/completions", {"messages": [{"role": "user", "content": text}]}, {}),
        ("/responses", {"input": text}, {}),
        (
            "/messages",
            {"max_tokens": 20, "messages": [{"role": "user", "content": text}]},
            {"anthropic-version": VERSION},
        ),
    ]:
        response = httpx.post(
            gateway.api_url + path,
            headers={"authorization": f"Bearer {world.key}", **headers},
            json={"model": model, **body},
            timeout=30,
        )
        assert response.status_code == 502, (path, response.text)
        error = response.json()["error"]
        assert "Injected mock error" not in error["message"]  # the provider's words stay inside
        assert "credentials" in error["message"]
        if path == "/messages":
            assert error["type"] == "api_error"
        else:
            assert error["code"] == "provider_auth"
        record = wait_for_record(response.headers["x-request-id"])
        assert (record.status, record.http_status, record.error_type) == (
            "upstream_error",
            502,
            "provider_auth",
        )
        assert str(status) in record.error_message


@pytest.mark.parametrize(
    ("path", "allowed", "anthropic_format"),
    [
        ("/chat/completions", "POST", False),
        ("/messages", "POST", True),
        ("/messages/count_tokens", "POST", True),
        ("/responses", "POST", False),
        ("/models", "GET", False),
        ("/models/demo", "GET", False),
        ("/responses/resp_1", "GET, DELETE", False),
        ("/conversations/conv_1/items", "GET, POST", False),
    ],
)
@pytest.mark.parametrize("method", ["OPTIONS", "HEAD"])
def test_every_method_an_endpoint_does_not_serve_is_a_405_in_the_apis_format(
    gateway, world, method, path, allowed, anthropic_format
):
    headers = {"authorization": f"Bearer {world.key}"}
    if anthropic_format:
        headers["anthropic-version"] = VERSION
    response = httpx.request(method, gateway.api_url + path, headers=headers, timeout=30)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"
    assert response.headers["allow"] == allowed
    if method == "HEAD":
        return  # no body, by HTTP
    body = response.json()
    if anthropic_format:
        assert (body["type"], body["error"]["type"]) == ("error", "invalid_request_error")
    else:
        assert body["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("limit", ["²", "٣", "1²"])
def test_a_limit_that_is_no_ascii_number_is_a_400_never_a_500(gateway, world, limit):
    """`str.isdigit` takes superscripts and other scripts' digits, which `int` may refuse."""
    headers = {"authorization": f"Bearer {world.key}"}
    stored = httpx.post(
        gateway.api_url + "/responses",
        headers=headers,
        json={"model": "demo", "input": "hello"},
        timeout=30,
    ).json()
    for path, extra in [
        (f"/responses/{stored['id']}/input_items", {}),
        ("/models", {"anthropic-version": VERSION}),
    ]:
        response = httpx.get(
            gateway.api_url + path,
            params={"limit": limit},
            headers={**headers, **extra},
            timeout=30,
        )
        assert response.status_code == 400, (path, response.text)
        body = response.json()
        message = body["error"]["message"]
        assert "limit" in message and "between 1 and" in message, message


@pytest.fixture(scope="module")
def badly_keyed(
    world: Any, gateway: Any, mock_server: Any, django_db_blocker: Any
) -> Iterator[str]:
    """Route `badly-keyed`: first a deployment whose provider key its provider refuses, then a
    good one."""
    from mock_provider.config import MockConfig
    from mock_provider.testing import run_mock_server
    from routing import services as routing
    from routing.models import Route
    from tests.support.live import wait_for_config

    with run_mock_server(MockConfig(required_api_key="sk-right")) as strict:
        with django_db_blocker.unblock():
            wrong = routing.provider_upsert(
                name="mock-wrong-key",
                kind="openai",
                base_url=strict.base_url + "/v1",
                credential="sk-wrong",
                region="us",
            )
            refused = routing.deployment_upsert(
                name="mock-gpt-wrong-key",
                provider=wrong,
                upstream_model="mock-gpt",
                input_price_per_mtok=Decimal("1"),
                output_price_per_mtok=Decimal("1"),
            )
            good = routing.deployment_upsert(
                name="mock-gpt",
                provider=routing.provider_upsert(
                    name="mock-ok",
                    kind="openai",
                    base_url=mock_server.base_url + "/v1",
                    credential="sk-upstream-secret",
                    region="us",
                ),
                upstream_model="mock-gpt-2026-01-01",
                input_price_per_mtok=Decimal("2.5"),
                output_price_per_mtok=Decimal("10"),
            )
            routing.route_upsert(alias="badly-keyed", description="", deployments=[refused, good])
        wait_for_config(gateway, world.key, "badly-keyed")
        yield "badly-keyed"
        with django_db_blocker.unblock():
            Route.objects.filter(alias="badly-keyed").delete()


def test_a_deployment_whose_provider_refuses_the_gateways_key_falls_over(
    gateway, world, badly_keyed
):
    """A 401 means the provider did nothing: the next deployment answers, as after a 5xx."""
    from tests.conftest import wait_for_record

    response = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {world.key}"},
        json={"model": badly_keyed, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-deployment"] == "mock-gpt"
    record = wait_for_record(response.headers["x-request-id"])
    assert record.status == "success"
    assert [a["deployment"] for a in record.attempts][:2] == ["mock-gpt-wrong-key", "mock-gpt"]


@pytest.mark.parametrize(
    "malformed",
    [
        {"thinking": "yes"},
        {"thinking": {"type": "enabled", "budget_tokens": "many"}},
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": 5}],
                },
            ]
        },
    ],
    ids=["thinking-string", "budget-string", "tool-result-number"],
)
@pytest.mark.parametrize("path", ["/messages", "/messages/count_tokens"])
@pytest.mark.parametrize("model", ["demo", "claude-fallback"])
def test_a_messages_body_of_the_wrong_shape_is_a_recorded_400(
    gateway, world, model, path, malformed
):
    """Fields the schema leaves open but the translation reads: a wrong type there is the
    client's 400 in Anthropic's format, with its record, never an unrecorded 500."""
    from tests.conftest import wait_for_record

    body = {"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    if path.endswith("count_tokens"):
        del body["max_tokens"]
    response = httpx.post(
        gateway.api_url + path,
        headers={"x-api-key": world.key, "anthropic-version": VERSION},
        json={**body, **malformed},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    record = wait_for_record(response.headers["x-request-id"])
    assert (record.status, record.http_status) == ("rejected", 400)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stop": 5}),
        (
            "/chat/completions",
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}
                ]
            },
        ),
        (
            "/responses",
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": 5}]}]},
        ),
    ],
    ids=["stop-number", "image-url-number", "responses-image-url-number"],
)
def test_a_field_of_the_wrong_type_never_crashes_the_translation_to_anthropic(
    gateway, world, path, body
):
    """Translated for an Anthropic deployment after admission: a crash there was an unrecorded
    500. Now the schema refuses it, or the provider does, and either way there is a record."""
    from tests.conftest import wait_for_record

    response = httpx.post(
        gateway.api_url + path,
        headers={"authorization": f"Bearer {world.key}"},
        json={"model": "claude-fallback", **body},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "error" in response.json()
    record = wait_for_record(response.headers["x-request-id"])
    assert record.http_status == 400
