"""Doors an attacker reaches from the network: the client address behind a proxy, request bodies
over the limit, and the API documentation."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.support.live import ROOT, LiveGateway, start_gateway

PASSWORD = "correct horse battery staple"
# The live gateway keeps django-axes' default of 5 failures per username and address.
FAILURE_LIMIT = 5


@pytest.fixture(scope="module")
def committed_users(django_db_setup: None, django_db_blocker: Any) -> list[str]:
    """Users committed before any test's own transaction (which would hide them from the live
    gateway); one per test keeps lockouts apart."""
    names = [f"door-{secrets.token_hex(4)}" for _ in range(8)]
    with django_db_blocker.unblock():
        for username in names:
            User.objects.create_user(username=username, password=PASSWORD)
    return names


@pytest.fixture
def console_user(committed_users: list[str]) -> str:
    return committed_users.pop()


@pytest.fixture(scope="module")
def proxied_gateway(world: Any) -> Iterator[LiveGateway]:
    """A gateway told that the proxy in front of it connects from 127.0.0.1."""
    live = start_gateway(GATEWAY_TRUSTED_PROXIES="127.0.0.1")
    yield live
    live.stop()


def _sign_in(
    gateway: LiveGateway,
    username: str,
    password: str,
    *,
    forwarded_for: str | None = None,
    from_address: str = "127.0.0.1",
) -> int:
    """One password sign-in at the console, as a browser does it (form, CSRF token, cookie)."""
    transport = httpx.HTTPTransport(local_address=from_address)
    with httpx.Client(base_url=gateway.url, transport=transport, timeout=10) as browser:
        page = browser.get("/console/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None
        headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
        answer = browser.post(
            "/console/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": token.group(1),
            },
            headers=headers,
        )
        return answer.status_code


# --- sign-in throttling and the client address ------------------------------------------------


@pytest.mark.e2e
@pytest.mark.django_db
def test_it_refuses_unlimited_password_guesses_with_a_new_forwarded_for_each_time(
    gateway: LiveGateway, console_user: str
) -> None:
    answers = [
        _sign_in(gateway, console_user, f"guess-{n}", forwarded_for=f"198.51.100.{n}")
        for n in range(20)
    ]
    assert answers[: FAILURE_LIMIT - 1] == [200] * (FAILURE_LIMIT - 1)  # the form, with an error
    assert set(answers[FAILURE_LIMIT:]) == {429}
    # Locked out: even the right password, from yet another "address", does not get in.
    assert _sign_in(gateway, console_user, PASSWORD, forwarded_for="198.51.100.99") == 429


@pytest.mark.e2e
@pytest.mark.django_db
def test_it_refuses_to_lock_out_a_victims_address_named_in_a_spoofed_header(
    gateway: LiveGateway, console_user: str
) -> None:
    victim = "127.0.0.2"  # loopback answers on all of 127/8: a second client address
    for n in range(FAILURE_LIMIT + 1):
        _sign_in(gateway, console_user, f"guess-{n}", forwarded_for=victim)
    assert _sign_in(gateway, console_user, PASSWORD, from_address=victim) == 302


@pytest.mark.e2e
@pytest.mark.django_db
def test_a_configured_proxys_forwarded_address_is_the_one_throttled(
    proxied_gateway: LiveGateway, console_user: str
) -> None:
    attacker, colleague = "198.51.100.66", "198.51.100.77"
    answers = [
        _sign_in(proxied_gateway, console_user, f"guess-{n}", forwarded_for=attacker)
        for n in range(FAILURE_LIMIT)
    ]
    assert answers == [200] * (FAILURE_LIMIT - 1) + [429]
    assert _sign_in(proxied_gateway, console_user, PASSWORD, forwarded_for=attacker) == 429
    assert _sign_in(proxied_gateway, console_user, PASSWORD, forwarded_for=colleague) == 302


@pytest.mark.e2e
@pytest.mark.django_db
def test_it_ignores_forwarded_for_from_a_client_that_is_not_the_configured_proxy(
    proxied_gateway: LiveGateway, console_user: str
) -> None:
    for n in range(FAILURE_LIMIT + 2):
        _sign_in(
            proxied_gateway,
            console_user,
            f"guess-{n}",
            forwarded_for=f"198.51.100.{n}",
            from_address="127.0.0.3",
        )
    assert (
        _sign_in(
            proxied_gateway,
            console_user,
            PASSWORD,
            forwarded_for="198.51.100.99",
            from_address="127.0.0.3",
        )
        == 429
    )


# --- request bodies over the limit ---------------------------------------------------------


def _raw_request(gateway: LiveGateway, head: str, body: bytes, *, timeout: float = 5.0) -> bytes:
    """Send a request's head and the start of its body, then read what the gateway answers
    without sending the rest: a gateway that waits for the whole body never answers."""
    port = int(gateway.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    return length is not None and len(body) >= int(length.group(1))


def _status_and_json(answer: bytes) -> tuple[int, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


@pytest.mark.e2e
@pytest.mark.django_db
def test_it_refuses_a_declared_oversized_proxy_body_before_reading_it(
    gateway: LiveGateway, world: Any
) -> None:
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {world.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    )
    status, body = _status_and_json(_raw_request(gateway, head, b'{"model": "demo", '))
    assert status == 413
    assert body["error"]["code"] == "request_too_large"
    assert body["error"]["type"] == "invalid_request_error"


@pytest.mark.e2e
@pytest.mark.django_db
def test_it_refuses_an_oversized_chunked_proxy_body_while_it_arrives(
    gateway: LiveGateway, world: Any
) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"model": "demo", "messages": [{"role": "user", "content": "'
        for _ in range(40):  # 40 MiB, five times the limit, never all of it held
            sent += 1
            yield b"a" * (1024 * 1024)
        yield b'"}]}'

    try:
        answer = httpx.post(
            gateway.api_url + "/chat/completions",
            headers={"authorization": f"Bearer {world.key}"},
            content=chunks(),
            timeout=30,
        )
    except httpx.TransportError:
        pytest.fail("the gateway dropped the connection instead of answering 413")
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "request_too_large"
    assert sent < 40


@pytest.mark.e2e
@pytest.mark.django_db
def test_it_answers_a_50_mb_management_body_with_413_in_its_own_format(
    gateway: LiveGateway,
) -> None:
    answer = httpx.post(
        gateway.url + "/api/v1/tenants",
        headers={"authorization": "Bearer gwa-not-a-key", "content-type": "application/json"},
        content=b"[" + b"0," * (25 * 1024 * 1024) + b"0]",
        timeout=30,
    )
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["code"] == "request_too_large"
    assert set(error) == {"code", "message", "fields"}


@pytest.mark.e2e
@pytest.mark.django_db
def test_it_refuses_an_oversized_console_post(gateway: LiveGateway) -> None:
    answer = httpx.post(
        gateway.url + "/console/login/",
        data={"username": "x", "password": "y" * (20 * 1024 * 1024)},
        timeout=30,
    )
    assert answer.status_code == 413


@pytest.mark.e2e
@pytest.mark.django_db
def test_a_body_under_the_limit_is_still_served(gateway: LiveGateway, world: Any) -> None:
    content = "word " * (1024 * 1024)  # 5 MiB of prompt
    answer = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {world.key}"},
        json={"model": "demo", "messages": [{"role": "user", "content": content}]},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text


# --- the API documentation -------------------------------------------------------------------

DOC_PATHS = ["/api/docs", "/api/v1/openapi.json", "/v1/docs", "/v1/openapi.json"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", DOC_PATHS)
def test_it_hides_the_api_docs_when_they_are_turned_off(path: str, settings: Any) -> None:
    settings.GATEWAY_API_DOCS = False
    answer = Client().get(path)
    assert answer.status_code == 404
    shown = answer.content.decode().lower()
    assert '"paths"' not in shown and "swagger" not in shown
    assert "error" in answer.json()


@pytest.mark.django_db
@pytest.mark.parametrize("path", DOC_PATHS)
def test_it_serves_the_api_docs_when_they_are_turned_on(path: str, settings: Any) -> None:
    settings.GATEWAY_API_DOCS = True
    assert Client().get(path).status_code == 200


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GATEWAY_ENV": "production", "GATEWAY_SECRET_KEY": "s" * 50}, "False"),
        ({"GATEWAY_ENV": "dev"}, "True"),
        (
            {"GATEWAY_ENV": "production", "GATEWAY_SECRET_KEY": "s" * 50, "GATEWAY_API_DOCS": "1"},
            "True",
        ),
    ],
)
def test_the_api_docs_are_off_by_default_in_production(env: dict[str, str], expected: str) -> None:
    script = "from django.conf import settings; print(settings.GATEWAY_API_DOCS)"
    shown = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + script],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "gateway_site.settings", "PATH": "/usr/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == expected
