"""Who may call what: deny by default, a key's grants within its team's, argument constraints."""

from __future__ import annotations

import pytest

from routing.mcp_gateway.table import Grant, McpTable, Upstream
from tenants.auth import KeyIdentity


def _identity(key_id: int, team_id: int = 10, tenant_id: int = 1) -> KeyIdentity:
    return KeyIdentity(
        key_id=key_id,
        key_prefix="gw-",
        key_name="k",
        tenant_id=tenant_id,
        tenant_slug="t",
        team_id=team_id,
        team_slug="team",
        allowed_models=None,
        residency_region="",
        expires_at=None,
        revoked=False,
    )


def _server(server_id: int, tenant_id: int = 1) -> Upstream:
    return Upstream(
        server_id, tenant_id, f"s{server_id}", "https://mcp.example/", (), 30, 1024, "block"
    )


def _grant(
    *tools: str, limit: int | None = None, **constraints: dict[str, tuple[object, ...]]
) -> Grant:
    return Grant(None if "*" in tools else frozenset(tools), limit, constraints)


TABLE = McpTable(
    servers={1: (_server(1), _server(2)), 2: (_server(3, tenant_id=2),)},
    team_grants={(1, 10): _grant("read", "write", limit=20), (2, 10): _grant("*")},
    key_grants={(1, 7): _grant("read", "delete", limit=5, read={"mode": ("ro", "rw")})},
    keys_with_grants=frozenset({7}),
)


def test_a_team_without_a_grant_reaches_nothing() -> None:
    assert TABLE.access(_identity(1, team_id=11)) == []
    assert TABLE.access(_identity(1, tenant_id=2, team_id=10)) == []


def test_a_key_without_grants_of_its_own_gets_its_teams() -> None:
    found = {a.upstream.name: a.grant for a in TABLE.access(_identity(1))}
    assert set(found) == {"s1", "s2"}
    assert found["s1"].allows("write") and found["s2"].allows("anything")


def test_a_keys_grants_narrow_its_teams_and_name_its_servers() -> None:
    (access,) = TABLE.access(_identity(7))
    assert access.upstream.name == "s1"  # s2 is the team's, but the key names only s1
    assert access.grant.allows("read")
    assert not access.grant.allows("write")  # the team's, not the key's
    assert not access.grant.allows("delete")  # the key's, not the team's
    assert access.grant.calls_per_minute == 5


def test_argument_constraints_refuse_values_outside_the_list() -> None:
    (access,) = TABLE.access(_identity(7))
    assert access.grant.refusal("read", {"mode": "ro"}) is None
    assert "must be one of 'ro', 'rw'" in str(access.grant.refusal("read", {"mode": "admin"}))
    assert access.grant.refusal("read", {}) is not None  # absent is not allowed either


@pytest.mark.django_db
def test_a_server_whose_secret_cannot_be_decrypted_is_left_out_not_every_tenants() -> None:
    from cryptography.fernet import Fernet

    from routing.mcp_gateway import services as mcp
    from routing.mcp_gateway.models import McpServer
    from routing.mcp_gateway.table import load_mcp_table
    from tests.support.world import build_tenant

    sealed = build_tenant("mcp-sealed", name="Sealed", teams=["ops"]).tenant
    fine = build_tenant("mcp-fine", name="Fine", teams=["ops"]).tenant
    for tenant in (sealed, fine):
        mcp.mcp_server_upsert(
            tenant=tenant,
            name="tools",
            url="https://mcp.example/mcp",
            credential=None,
            client_credentials=mcp.ClientCredentials(
                token_url="https://idp.example/token", client_id="gw", client_secret="s"
            ),
        )
    # Sealed with a key this worker does not hold (a rotation that left it behind).
    foreign = Fernet(Fernet.generate_key()).encrypt(b"s").decode()
    McpServer.objects.filter(tenant=sealed).update(oauth_client_secret_encrypted=foreign)
    table = load_mcp_table()
    assert sealed.id not in table.servers
    assert [u.name for u in table.servers[fine.id]] == ["tools"]
