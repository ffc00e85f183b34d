"""Prompts by reference on the live gateway: rendered, recorded, pinned, split, fingerprinted."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import anthropic
import httpx
import openai
import pytest

from audit.activity.services import Actor
from routing.prompts import services
from routing.prompts.render import system_fingerprint
from tenants import services as tenants
from tenants.models import Tenant
from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

OPERATOR = Actor("user", "prompt-tests")
V1 = "You advise {{ client }} formally."
V2 = "You advise {{ client }} warmly about {{ topic }}."


@pytest.fixture(scope="module")
def registry(gateway: Any, world: Any, django_db_blocker: Any) -> dict[str, str]:
    """Committed prompts the live gateway can see: `e2e-advisor` v1/v2, a 50 % canary, a pin."""
    with django_db_blocker.unblock():
        acme = Tenant.objects.get(slug="acme")
        prompt = services.prompt_declare(actor=OPERATOR, tenant=acme, name="e2e-advisor")
        for text, params in ((V1, {}), (V2, {"temperature": 0.1, "max_tokens": 50})):
            services.prompt_publish(
                actor=OPERATOR,
                prompt=prompt,
                messages=[{"role": "system", "content": text}],
                parameters=params,
                model="demo",
            )
        services.prompt_label_move(actor=OPERATOR, prompt=prompt, label="production", version=1)
        services.prompt_label_move(
            actor=OPERATOR,
            prompt=prompt,
            label="split",
            version=1,
            canary_version=2,
            canary_percent=50,
        )
        _, pinned = tenants.key_create(team=world.team, name="e2e-prompt-pinned")
        key = tenants.ApiKey.objects.get(name="e2e-prompt-pinned", revoked_at__isnull=True)
        services.prompt_pin_set(actor=OPERATOR, prompt=prompt, version=2, api_key=key)
    _wait_until_served(gateway, world.key)
    return {"pinned_key": pinned.plaintext}


def _wait_until_served(gateway: Any, key: str) -> None:
    """A running gateway reloads its registry every 0.5 s: wait until it knows the new prompts."""
    deadline = time.monotonic() + 10
    while True:
        response = httpx.post(
            gateway.api_url + "/chat/completions",
            headers={"authorization": f"Bearer {key}", "x-gateway-prompt": "e2e-advisor@split"},
            json={"model": "demo", "messages": [{"role": "user", "content": "warm up"}]},
        )
        if response.status_code != 404:
            return
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)


def _openai(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def test_a_label_is_rendered_recorded_and_named_in_the_response(gateway, world, registry):
    raw = _openai(gateway, world.key).chat.completions.with_raw_response.create(
        model="demo",
        messages=[{"role": "user", "content": "How is my portfolio allocated?"}],
        extra_headers={"x-gateway-prompt": "e2e-advisor@production"},
        extra_body={"prompt_variables": {"client": "Ms Smith"}},
    )

    assert raw.parse().choices[0].message.content.startswith("Mock reply to: How is my")
    assert raw.headers["x-gateway-prompt"] == "e2e-advisor"
    assert raw.headers["x-gateway-prompt-version"] == "1"
    assert raw.headers["x-gateway-prompt-label"] == "production"
    record = wait_for_record(raw.headers["x-request-id"])
    assert (record.prompt_name, record.prompt_version, record.prompt_label) == (
        "e2e-advisor",
        1,
        "production",
    )
    assert record.request_body["messages"] == [
        {"role": "system", "content": "You advise Ms Smith formally."},
        {"role": "user", "content": "How is my portfolio allocated?"},
    ]
    assert "prompt_variables" not in record.request_body
    # The rendered prompt is the registry's, not the caller's own: no fingerprint.
    assert record.prompt_fingerprint == ""


def test_an_exact_version_in_metadata_brings_its_parameters_and_default_model(
    gateway, world, registry
):
    # No `model` at all: the version's default route answers.
    response = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {world.key}"},
        json={
            "messages": [{"role": "user", "content": "Rebalance?"}],
            "metadata": {"prompt": "e2e-advisor@2"},
            "prompt_variables": {"client": "C-7", "topic": "bonds"},
            "max_tokens": 20,
        },
    )

    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-prompt-version"] == "2"
    assert "x-gateway-prompt-label" not in response.headers
    record = wait_for_record(response.headers["x-request-id"])
    assert record.route_alias == "demo"
    assert record.request_body["temperature"] == 0.1  # from the version
    assert record.request_body["max_tokens"] == 20  # the caller's own value wins
    assert record.request_body["messages"][0]["content"] == "You advise C-7 warmly about bonds."


def test_a_missing_variable_is_a_clear_400_and_is_still_recorded(gateway, world, registry):
    with pytest.raises(openai.BadRequestError) as raised:
        _openai(gateway, world.key).chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-gateway-prompt": "e2e-advisor@2"},
            extra_body={"prompt_variables": {"client": "C-7"}},
        )

    error = raised.value.body
    assert error["code"] == "prompt_variable_missing"
    assert error["param"] == "prompt_variables.topic"
    assert "needs the variable 'topic'" in error["message"]
    record = wait_for_record(raised.value.response.headers["x-request-id"])
    assert (record.status, record.prompt_name, record.prompt_version) == (
        "rejected",
        "e2e-advisor",
        2,
    )


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("nope@production", "prompt_not_found"),
        ("e2e-advisor@nolabel", "prompt_label_not_found"),
        ("e2e-advisor@9", "prompt_version_not_found"),
        ("@production", "invalid_prompt_reference"),
    ],
)
def test_a_reference_that_does_not_resolve_says_why(gateway, world, registry, reference, code):
    response = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {world.key}", "x-gateway-prompt": reference},
        json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code in (400, 404)
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("selector", ["²", "٢"])
def test_a_selector_of_digits_not_ascii_is_a_label_that_does_not_exist(
    gateway, world, registry, selector
):
    """`str.isdigit` takes "²" (which `int` refuses: it was a 500) and other scripts' digits:
    only ASCII digits name a version."""
    response = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {world.key}"},
        json={
            "model": "demo",
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"prompt": f"e2e-advisor@{selector}"},
        },
    )
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "prompt_label_not_found"
    record = wait_for_record(response.headers["x-request-id"])
    assert (record.status, record.error_type) == ("rejected", "prompt_label_not_found")


def test_another_tenants_prompt_does_not_exist_for_you(gateway, world, registry):
    with pytest.raises(openai.NotFoundError) as raised:
        _openai(gateway, world.other_tenant_key).chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-gateway-prompt": "e2e-advisor@production"},
            extra_body={"prompt_variables": {"client": "x"}},
        )
    assert raised.value.body["code"] == "prompt_not_found"


def test_variables_without_a_prompt_are_refused(gateway, world, registry):
    with pytest.raises(openai.BadRequestError) as raised:
        _openai(gateway, world.key).chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"prompt_variables": {"client": "x"}},
        )
    assert raised.value.body["code"] == "prompt_not_named"


def test_a_pinned_key_gets_its_version_whatever_label_it_asks_for(gateway, world, registry):
    raw = _openai(gateway, registry["pinned_key"]).chat.completions.with_raw_response.create(
        model="demo",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-gateway-prompt": "e2e-advisor@production"},
        extra_body={"prompt_variables": {"client": "x", "topic": "y"}},
    )
    assert raw.headers["x-gateway-prompt-version"] == "2"
    assert raw.headers["x-gateway-prompt-label"] == "pin:key"


def test_a_canary_label_splits_by_end_user_and_each_user_stays_on_one_side(
    gateway, world, registry
):
    api = _openai(gateway, world.key)
    seen: dict[str, set[str]] = {}
    for i in range(40):
        for _ in range(2):
            raw = api.chat.completions.with_raw_response.create(
                model="demo",
                messages=[{"role": "user", "content": "hi"}],
                user=f"advisor-{i}",
                extra_headers={"x-gateway-prompt": "e2e-advisor@split"},
                extra_body={"prompt_variables": {"client": "x", "topic": "y"}},
            )
            seen.setdefault(f"advisor-{i}", set()).add(raw.headers["x-gateway-prompt-version"])
    assert all(len(versions) == 1 for versions in seen.values())
    sides = Counter(next(iter(versions)) for versions in seen.values())
    assert set(sides) == {"1", "2"}
    assert 8 <= sides["2"] <= 32


def test_a_callers_own_system_prompt_is_fingerprinted(gateway, world):
    system = "You are the allocation assistant.  Answer in one sentence."
    raw = _openai(gateway, world.key).chat.completions.with_raw_response.create(
        model="demo",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": "hi"}],
    )
    record = wait_for_record(raw.headers["x-request-id"])
    assert record.prompt_fingerprint == system_fingerprint([{"role": "system", "content": system}])
    assert (record.prompt_name, record.prompt_version) == ("", None)
    assert "x-gateway-prompt-version" not in raw.headers


def test_the_anthropic_api_renders_a_prompt_by_header_too(gateway, world, registry):
    api = anthropic.Anthropic(base_url=gateway.url, api_key=world.key, max_retries=0)
    raw = api.messages.with_raw_response.create(
        model="demo",
        max_tokens=50,
        messages=[{"role": "user", "content": "Which funds?"}],
        extra_headers={"x-gateway-prompt": "e2e-advisor"},  # no label: production
        extra_body={"prompt_variables": {"client": "Mr Jones"}},
    )
    assert raw.parse().content[0].text.startswith("Mock reply to: Which funds?")
    assert raw.headers["x-gateway-prompt-version"] == "1"
    record = wait_for_record(raw.headers["x-request-id"])
    assert record.request_body["messages"][0] == {
        "role": "system",
        "content": "You advise Mr Jones formally.",
    }


def test_a_stream_names_its_prompt_version_too(gateway, world, registry):
    raw = _openai(gateway, world.key).chat.completions.with_raw_response.create(
        model="demo",
        messages=[{"role": "user", "content": "Stream it"}],
        stream=True,
        extra_headers={"x-gateway-prompt": "e2e-advisor@production"},
        extra_body={"prompt_variables": {"client": "C-9"}},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    assert text.startswith("Mock reply to: Stream it")
    assert raw.headers["x-gateway-prompt-version"] == "1"
    record = wait_for_record(raw.headers["x-request-id"])
    assert (record.prompt_version, record.stream) == (1, True)
