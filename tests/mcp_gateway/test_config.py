"""`mcp_servers:` and `mcp_tools:` in the YAML: applied through the services, credentials at rest
encrypted, grants naming unknown servers refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway_site.declarative.services import ConfigError, config_apply, config_load
from routing.mcp_gateway.models import McpServer, McpToolGrant

CONFIG = {
    "tenants": [
        {
            "slug": "yaml-mcp",
            "name": "Yaml",
            "mcp_servers": [
                {
                    "name": "crm",
                    "url": "https://mcp.crm.example/mcp",
                    "credential": "crm-token-0123456789",
                    "result_injection": "flag",
                }
            ],
            "teams": [
                {
                    "slug": "advisors",
                    "name": "Advisors",
                    "mcp_tools": [
                        {"server": "crm", "tools": ["lookup_customer"], "calls_per_minute": 10}
                    ],
                    "keys": [
                        {
                            "name": "agent",
                            "value": "gw-yaml-mcp-agent-key-0123456789",
                            "mcp_tools": [
                                {
                                    "server": "crm",
                                    "tools": ["lookup_customer"],
                                    "argument_constraints": {
                                        "lookup_customer": {"fields": ["name"]}
                                    },
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    ]
}


def _file(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.django_db
def test_servers_and_grants_are_applied_and_the_credential_is_encrypted(tmp_path: Path) -> None:
    report = config_apply(config_load(_file(tmp_path, CONFIG)))
    assert report.counts["mcp_servers"] == 1
    server = McpServer.objects.get(tenant__slug="yaml-mcp", name="crm")
    assert "crm-token" not in server.credential_encrypted
    assert server.get_credential() == "crm-token-0123456789"
    assert server.result_injection == "flag"
    grants = McpToolGrant.objects.filter(server=server)
    assert {(g.team_id is not None, tuple(g.tools), g.calls_per_minute) for g in grants} == {
        (True, ("lookup_customer",), 10),
        (False, ("lookup_customer",), None),
    }
    # Applying it again changes nothing.
    config_apply(config_load(_file(tmp_path, CONFIG)))
    assert McpToolGrant.objects.filter(server=server).count() == 2


def test_a_grant_naming_an_unknown_server_is_refused(tmp_path: Path) -> None:
    config = yaml.safe_load(yaml.safe_dump(CONFIG))
    config["tenants"][0]["teams"][0]["mcp_tools"][0]["server"] = "elsewhere"
    with pytest.raises(ConfigError, match="unknown server 'elsewhere'"):
        config_load(_file(tmp_path, config))


@pytest.mark.django_db
def test_prices_and_token_exchange_come_from_the_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HR_EXCHANGE_SECRET", "exchange-secret-from-env")
    config = yaml.safe_load(yaml.safe_dump(CONFIG))
    server = config["tenants"][0]["mcp_servers"][0]
    server["credential_header"] = "x-api-key"
    server["tool_prices"] = {"lookup_customer": "0.002", "*": 0}
    server["token_exchange"] = {
        "token_url": "https://idp.example/oauth2/token",
        "client_id": "gw",
        "client_secret": "env:HR_EXCHANGE_SECRET",
        "scope": "crm.read",
    }
    config_apply(config_load(_file(tmp_path, config)))
    saved = McpServer.objects.get(tenant__slug="yaml-mcp", name="crm")
    assert saved.tool_prices == {"lookup_customer": "0.002", "*": "0"}
    assert saved.exchange_scope == "crm.read" and saved.exchange_client_id == "gw"
    assert saved.get_exchange_client_secret() == "exchange-secret-from-env"
    assert "exchange-secret" not in saved.exchange_client_secret_encrypted
    # A price that is no amount: the file is refused.
    server["tool_prices"] = {"lookup_customer": "free"}
    with pytest.raises(ConfigError):
        config_load(_file(tmp_path, config))


@pytest.mark.django_db
def test_client_credentials_come_from_the_yaml_with_the_secret_encrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_CLIENT_SECRET", "cc-secret-from-env-0123")
    config = yaml.safe_load(yaml.safe_dump(CONFIG))
    server = config["tenants"][0]["mcp_servers"][0]
    server["credential_header"] = "x-api-key"
    server["client_credentials"] = {
        "token_url": "https://idp.example/oauth2/token",
        "client_id": "gw-service",
        "client_secret": "env:CRM_CLIENT_SECRET",
        "scope": "crm.read",
    }
    config_apply(config_load(_file(tmp_path, config)))
    saved = McpServer.objects.get(tenant__slug="yaml-mcp", name="crm")
    assert (saved.oauth_token_url, saved.oauth_client_id, saved.oauth_scope) == (
        "https://idp.example/oauth2/token",
        "gw-service",
        "crm.read",
    )
    assert saved.get_oauth_client_secret() == "cc-secret-from-env-0123"
    assert "cc-secret" not in saved.oauth_client_secret_encrypted
    # Both ways of getting a token at once: the file is refused, naming why.
    server["token_exchange"] = {
        "token_url": "https://idp.example/oauth2/token",
        "client_id": "gw",
        "client_secret": "x",
    }
    with pytest.raises(ConfigError, match="not both"):
        config_apply(config_load(_file(tmp_path, config)))
    # Left out of the file: client credentials are off, the secret gone.
    del server["token_exchange"], server["client_credentials"]
    config_apply(config_load(_file(tmp_path, config)))
    saved.refresh_from_db()
    assert saved.oauth_token_url == "" and saved.oauth_client_secret_encrypted == ""
