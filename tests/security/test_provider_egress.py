"""A provider's credential goes only to the host it was given for, and only where egress is allowed.

The attack: a platform admin key (or a YAML file) changes a provider's base_url and keeps the
stored, "write-only" credential, which the gateway then sends to the new host; or it points a
provider at the cloud metadata service or at the gateway's own loopback services.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from django.core.management import CommandError, call_command

from audit.activity.models import ActivityEvent
from audit.activity.services import SYSTEM
from gateway_site.api.services import admin_key_create
from routing import services as routing
from routing.core.egress import EgressPolicy, EgressRefused
from routing.core.egress_transport import egress_refusal, egress_transport
from routing.core.providers.openai import OpenAIAdapter
from routing.core.types import Target
from routing.models import Deployment, Provider
from tests.conftest import wait_for_record
from tests.management.conftest import Api
from tests.support.live import LiveGateway, start_gateway

SECRET = "sk-live-upstream-credential-0123456789"
HOME = "https://llm.example/v1"
EVERYTHING = ["0.0.0.0/0", "::/0", "*.internal", "metadata.google.internal", "llm.example"]


@pytest.fixture
def platform(db: None) -> Api:
    _, material = admin_key_create(name="ops", tenant=None, created_by="test", actor=SYSTEM)
    return Api(material.plaintext)


@pytest.fixture
def provider(db: None) -> Provider:
    return routing.provider_upsert(
        name="vendor-x", kind="openai", base_url=HOME, credential=SECRET, region="us"
    )


def policy(settings: Any, allow: list[str] | None = None, **flags: bool) -> None:
    settings.GATEWAY_EGRESS = EgressPolicy.parse(allow or [], **flags)


def refused_rule(response: Any) -> str:
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "egress_refused"
    assert error["fields"][0]["field"] == "base_url"
    return str(error["message"])


# --- moving a provider needs its credential again ------------------------------------------


@pytest.mark.parametrize(
    "new_url",
    [
        "https://attacker.example/v1",  # another host
        "https://llm.example:8443/v1",  # another port
        "http://llm.example/v1",  # another scheme: the credential in clear text
    ],
)
def test_it_refuses_to_move_a_provider_elsewhere_without_its_credential(
    platform: Api, provider: Provider, new_url: str
) -> None:
    response = platform.put("/providers/vendor-x", {"kind": "openai", "base_url": new_url})

    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "credential_required"
    assert error["fields"][0]["field"] == "credential"
    assert "credential again" in error["message"]
    stored = Provider.objects.get(name="vendor-x")
    assert stored.base_url == HOME and stored.get_credential() == SECRET
    assert not ActivityEvent.objects.filter(
        action="provider.update", target_id=str(stored.pk)
    ).exists()


def test_a_new_path_on_the_same_origin_keeps_the_stored_credential(
    platform: Api, provider: Provider
) -> None:
    body = {"kind": "openai", "base_url": "https://LLM.example:443/openai/v1", "region": "eu"}

    response = platform.put("/providers/vendor-x", body)

    assert response.status_code == 200, response.content
    stored = Provider.objects.get(name="vendor-x")
    assert stored.base_url.endswith("/openai/v1") and stored.get_credential() == SECRET


def test_moving_a_provider_with_its_credential_in_the_same_request_works(
    platform: Api, provider: Provider
) -> None:
    body = {"kind": "openai", "base_url": "https://eu.llm.example/v1", "credential": "sk-eu-1"}

    response = platform.put("/providers/vendor-x", body)

    assert response.status_code == 200, response.content
    stored = Provider.objects.get(name="vendor-x")
    assert stored.base_url == "https://eu.llm.example/v1" and stored.get_credential() == "sk-eu-1"
    event = ActivityEvent.objects.get(action="provider.update", target_label="vendor-x")
    assert event.details["credential_changed"] is True and "sk-eu-1" not in str(event.details)


# --- the egress policy when a provider is saved --------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://169.254.10.1:8080/v1", "link_local"),
        ("http://[fe80::1]/v1", "link_local"),
        ("http://0.0.0.0:8000/v1", "unspecified"),
    ],
)
def test_it_refuses_metadata_and_link_local_targets_even_when_everything_is_allowed(
    platform: Api, settings: Any, url: str, rule: str
) -> None:
    policy(settings, EVERYTHING, allow_private=True, allow_loopback=True)

    response = platform.put(
        "/providers/meta", {"kind": "openai", "base_url": url, "credential": "sk-x"}
    )

    assert f"egress rule '{rule}'" in refused_rule(response)
    assert not Provider.objects.filter(name="meta").exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://\u008a\u00e4\u001a\u00e7\u001b<[=\u00df",  # an unclosed "[" (found by the fuzz)
        "http://[::1/v1",
        "http://llm.example:99999/v1",
        "http://llm.example:port/v1",
    ],
)
def test_a_url_that_cannot_be_parsed_is_refused_as_invalid_not_a_crash(
    platform: Api, settings: Any, url: str
) -> None:
    policy(settings, EVERYTHING, allow_private=True, allow_loopback=True)

    response = platform.put(
        "/providers/odd", {"kind": "openai", "base_url": url, "credential": "x"}
    )

    assert "egress rule 'invalid_url'" in refused_rule(response)
    assert not Provider.objects.filter(name="odd").exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9100/v1",
        "http://localhost:9100/v1",
        "http://[::1]:9100/v1",
        "http://127.1:9100/v1",  # the short form a resolver still reads as 127.0.0.1
        "http://2130706433:9100/v1",  # and the decimal one
    ],
)
def test_it_refuses_loopback_unless_loopback_is_allowed(
    platform: Api, settings: Any, url: str
) -> None:
    policy(settings, allow_private=True)
    body = {"kind": "openai", "base_url": url, "credential": "sk-x"}

    message = refused_rule(platform.put("/providers/local", body))

    assert "egress rule 'loopback'" in message and "GATEWAY_EGRESS_ALLOW_LOOPBACK" in message
    assert not Provider.objects.filter(name="local").exists()
    policy(settings, allow_loopback=True)
    assert platform.put("/providers/local", body).status_code == 200


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5/v1", "http://192.168.1.10/v1", "http://[fd12::1]/"]
)
def test_it_refuses_private_networks_unless_they_are_allowed(
    platform: Api, settings: Any, url: str
) -> None:
    policy(settings, allow_loopback=True)
    body = {"kind": "openai", "base_url": url, "credential": "sk-x"}

    assert "egress rule 'private'" in refused_rule(platform.put("/providers/inside", body))
    policy(settings, allow_private=True)
    assert platform.put("/providers/inside", body).status_code == 200


def test_an_allow_list_admits_only_the_hosts_and_networks_it_names(
    platform: Api, settings: Any
) -> None:
    policy(settings, ["llm.example", "*.corp.example", "10.20.0.0/16"], allow_private=True)

    def put(url: str) -> Any:
        return platform.put("/providers/p", {"kind": "openai", "base_url": url, "credential": "k"})

    assert put("https://llm.example/v1").status_code == 200
    assert put("https://gpu.corp.example/v1").status_code == 200
    assert put("http://10.20.3.4:8000/v1").status_code == 200
    for url in ("https://evil.example/v1", "https://corp.example.evil/v1", "http://10.21.0.1/"):
        assert "egress rule 'not_allowed'" in refused_rule(put(url)), url


def test_it_refuses_a_host_name_that_resolves_to_a_forbidden_address_when_saved(
    platform: Api, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(settings)
    monkeypatch.setattr("routing.egress._resolve", lambda host: ["93.184.216.34", "127.0.0.1"])

    response = platform.put(
        "/providers/p",
        {"kind": "openai", "base_url": "https://sneaky.example/v1", "credential": "k"},
    )

    assert "sneaky.example (127.0.0.1)" in refused_rule(response)


# --- the declarative YAML obeys the same rules ---------------------------------------------

YAML = """
version: 1
providers:
  - name: vendor-x
    kind: openai
    base_url: {url}
{credential}
"""


def apply(tmp_path: Path, url: str, credential: str = "") -> None:
    path = tmp_path / "gateway.yaml"
    line = f"    credential: {credential}" if credential else ""
    path.write_text(YAML.format(url=url, credential=line))
    call_command("apply_config", str(path))


def test_a_yaml_file_cannot_move_a_provider_without_its_credential(
    provider: Provider, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="credential_required"):
        apply(tmp_path, "https://attacker.example/v1")

    stored = Provider.objects.get(name="vendor-x")
    assert stored.base_url == HOME and stored.get_credential() == SECRET
    apply(tmp_path, "https://attacker.example/v1", credential="sk-new-host")
    stored.refresh_from_db()
    assert stored.base_url == "https://attacker.example/v1"
    assert stored.get_credential() == "sk-new-host"


def test_a_yaml_file_cannot_point_a_provider_at_the_metadata_service(
    db: None, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="egress rule 'metadata'"):
        apply(tmp_path, "http://169.254.169.254/latest", credential="sk-x")
    assert not Provider.objects.filter(name="vendor-x").exists()


# --- at connect time: the shared client (real aiohttp) refuses what a name resolves to ------


class FixedResolver(AbstractResolver):
    """DNS as an attacker controls it: each name answers the address given here."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers[host]
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


def client_for(allow_loopback: bool, answers: dict[str, str], kind: str = "aiohttp") -> Any:
    transport = egress_transport(
        EgressPolicy.parse(["0.0.0.0/0"], allow_private=True, allow_loopback=allow_loopback),
        kind=kind,
        limits=httpx.Limits(max_connections=4),
        resolver=FixedResolver(answers),
    )
    return httpx.AsyncClient(transport=transport, timeout=5)


async def test_the_client_refuses_a_name_that_resolves_to_the_metadata_service_at_connect_time(
    mock_server: Any,
) -> None:
    port = mock_server.base_url.rsplit(":", 1)[1]
    answers = {"provider.example": "127.0.0.1", "rebound.example": "169.254.169.254"}
    async with client_for(True, answers) as client:
        # The same client reaches an allowed address (the mock): the refusal below is the policy.
        ok = await client.get(f"http://provider.example:{port}/health")
        assert ok.status_code == 200
        started = time.monotonic()
        with pytest.raises(httpx.TransportError) as failed:
            await client.get(f"http://rebound.example:{port}/latest/meta-data/")
    assert time.monotonic() - started < 2
    refusal = egress_refusal(failed.value)
    assert refusal is not None and refusal.rule == "metadata"


async def test_the_client_refuses_loopback_at_connect_time_unless_allowed(
    mock_server: Any,
) -> None:
    port = mock_server.base_url.rsplit(":", 1)[1]
    for kind in ("aiohttp", "httpx"):
        for url in (f"http://127.0.0.1:{port}/health", f"http://localhost:{port}/health"):
            async with client_for(False, {}, kind) as client:
                with pytest.raises(httpx.ConnectError) as failed:
                    await client.get(url)
            refusal = egress_refusal(failed.value)
            assert refusal is not None and refusal.rule == "loopback", (kind, url)


async def test_httpx_pool_refuses_a_name_that_resolves_to_loopback(
    mock_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    port = int(mock_server.base_url.rsplit(":", 1)[1])
    real = asyncio.get_running_loop().getaddrinfo

    async def rebound(host: str, *args: Any, **kwargs: Any) -> Any:
        return await real("127.0.0.1" if host == "rebound.example" else host, *args, **kwargs)

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebound)
    async with client_for(False, {}, "httpx") as client:
        with pytest.raises(httpx.ConnectError) as failed:
            await client.get(f"http://rebound.example:{port}/health")
    refusal = egress_refusal(failed.value)
    assert refusal is not None and refusal.rule == "loopback"


async def test_an_adapter_reports_a_refused_address_as_an_egress_failure() -> None:
    async with client_for(True, {"rebound.example": "169.254.169.254"}) as client:
        target = Target(
            deployment_id=1,
            deployment_name="d",
            provider_name="p",
            kind="openai",
            base_url="http://rebound.example/v1",
            api_key=SECRET,
            upstream_model="m",
        )
        with pytest.raises(Exception) as failed:
            await OpenAIAdapter(client).chat(target, {"model": "m", "messages": []})
    assert getattr(failed.value, "cause", None) == "egress_refused"
    assert "egress policy" in str(failed.value)


def test_the_policy_reads_its_rules_from_settings_entries() -> None:
    with pytest.raises(ValueError, match="not a host name"):
        EgressPolicy.parse(["https://llm.example"])
    with pytest.raises(EgressRefused, match="scheme"):
        EgressPolicy().check_url("file:///etc/passwd")


# --- through the live proxy: a clear 502 in the proxy's format, and an audit record ---------


@pytest.fixture(scope="module")
def local_deployment(world: Any, mock_server: Any, django_db_blocker: Any) -> Iterator[str]:
    """A provider saved while loopback was allowed, by a name that now resolves to loopback."""
    port = mock_server.base_url.rsplit(":", 1)[1]
    with django_db_blocker.unblock():
        provider = routing.provider_upsert(
            name="egress-local",
            kind="openai",
            base_url=f"http://localhost:{port}/v1",
            credential=SECRET,
            region="us",
        )
        deployment = routing.deployment_upsert(
            name="egress-local-gpt",
            provider=provider,
            upstream_model="mock-gpt",
            input_price_per_mtok=Decimal(0),
            output_price_per_mtok=Decimal(0),
        )
    yield deployment.name
    with django_db_blocker.unblock():
        Deployment.objects.filter(pk=deployment.pk).update(is_active=False)


@pytest.fixture(scope="module")
def strict_gateway(world: Any) -> Iterator[LiveGateway]:
    live = start_gateway(GATEWAY_EGRESS_ALLOW_LOOPBACK="false")
    yield live
    live.stop()


@pytest.mark.e2e
@pytest.mark.django_db
def test_the_proxy_answers_a_clear_502_when_a_provider_resolves_to_a_forbidden_address(
    world: Any, local_deployment: str, strict_gateway: LiveGateway
) -> None:
    body = {"model": local_deployment, "messages": [{"role": "user", "content": "hello"}]}
    headers = {"authorization": f"Bearer {world.key}"}
    deadline = time.monotonic() + 10
    while True:  # the new deployment reaches the gateway's routing table within a second
        started = time.monotonic()
        response = httpx.post(
            strict_gateway.api_url + "/chat/completions", json=body, headers=headers, timeout=10
        )
        if response.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    assert time.monotonic() - started < 5
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "egress_refused" and error["type"] == "upstream_error"
    assert "egress policy" in error["message"]
    assert SECRET not in response.text
    record = wait_for_record(response.headers["x-request-id"])
    assert record.status == "upstream_error" and record.error_type == "egress_refused"
    assert "loopback" in record.error_message


def test_a_hosts_verdict_is_kept_per_policy_and_a_refusal_raised_afresh_each_time() -> None:
    strict = EgressPolicy.parse(["api.example.com"])
    refusals = []
    for _ in range(3):
        with pytest.raises(EgressRefused) as raised:
            strict.check_host("169.254.169.254")
        refusals.append(raised.value)
    strict.check_host("api.example.com")
    strict.check_host("api.example.com")

    assert {r.rule for r in refusals} == {"metadata"}
    assert len({id(r) for r in refusals}) == 3  # no traceback grows on a shared exception
    assert refusals[0].__traceback__ is not None and refusals[0].__context__ is None
    # Another policy decides for itself: a verdict never crosses policies.
    with pytest.raises(EgressRefused):
        strict.check_host("127.0.0.1")
    EgressPolicy.parse([], allow_loopback=True).check_host("127.0.0.1")
    with pytest.raises(EgressRefused):
        strict.check_host("127.0.0.1")
