"""Request and response bodies of the management API. Secrets appear in exactly two places:
the one response that creates a key (`KeyCreated`, `AdminKeyCreated`), and provider credentials
on the way in (never out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from gateway_site.bounds import StorableInput
from tenants.models import Membership, Role

SLUG = r"^[a-z0-9][a-z0-9_-]*$"
PINS_HELP = (
    "Version pins, {public model name: deployment name or exact upstream model}: requests for the "
    "model go to that deployment only, never to another version. Each model must be one the team "
    "(or key) may use, each value a deployment of that model's route; {} removes every pin."
)


class BodyIn(Schema, StorableInput):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a silent no-op


class BodyOut(Schema):
    # Read from model objects through the aliases; built by field name where a handler adds to it.
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)


# --- tenants, teams, members -----------------------------------------------------------------


class TenantIn(BodyIn):
    slug: str = Field(pattern=SLUG, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    residency_region: str = Field(default="", max_length=32)


class TenantPatch(BodyIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    residency_region: str | None = Field(default=None, max_length=32)
    allowed_models: list[str] | None = Field(
        default=None,
        description="Route aliases or deployments the tenant may use; empty means all of them.",
    )


class TenantOut(Schema):
    slug: str
    name: str
    residency_region: str
    allowed_models: list[str]
    is_active: bool
    created_at: datetime


class TeamIn(BodyIn):
    slug: str = Field(pattern=SLUG, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    allowed_models: list[str] = Field(
        default=[], description="Public model names the team may use; empty means every model."
    )
    model_pins: dict[str, str] = Field(default={}, description=PINS_HELP)


class TeamPatch(BodyIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    allowed_models: list[str] | None = None
    model_pins: dict[str, str] | None = Field(default=None, description="Omit to keep them.")


class TeamOut(Schema):
    slug: str
    name: str
    allowed_models: list[str]
    model_pins: dict[str, str]
    created_at: datetime


class MemberIn(BodyIn):
    username: str = Field(
        max_length=150,
        description="A new account's username; an existing account can only be added by a "
        "platform key, and its email and password are then left as they are.",
    )
    email: str = Field(default="", max_length=254)
    role: Role
    teams: list[str] = Field(default=[], description="Slugs of teams of this tenant to join.")
    password: str | None = Field(
        default=None,
        min_length=12,
        description="Optional: users who sign in through SSO need none.",
    )


class MemberPatch(BodyIn):
    role: Role | None = None
    teams: list[str] | None = Field(
        default=None, description="Exactly the teams of this tenant the member is in."
    )
    email: str | None = Field(default=None, max_length=254)
    password: str | None = Field(
        default=None,
        min_length=12,
        description="Only for an account that belongs to this tenant alone (platform keys: "
        "any account but staff and superusers).",
    )


class MemberOut(BodyOut):
    """Read from a Membership whose user's teams are prefetched for this tenant only."""

    username: str = Field(alias="user.username")
    email: str = Field(alias="user.email")
    role: str
    teams: list[str]

    @staticmethod
    def resolve_teams(obj: Membership) -> list[str]:
        return [team.slug for team in obj.user.teams.all()]


# --- virtual keys ------------------------------------------------------------------------------


class KeyIn(BodyIn):
    team: str = Field(max_length=64, description="Slug of the team the key belongs to.")
    name: str = Field(min_length=1, max_length=200)
    allowed_models: list[str] = Field(
        default=[], description="Within what the team allows; empty means all of those."
    )
    expires_at: datetime | None = None
    owner: str | None = Field(
        default=None, max_length=150, description="Username of a member of the tenant."
    )
    model_pins: dict[str, str] = Field(
        default={}, description=PINS_HELP + " A key's pin overrides its team's for that model."
    )


class KeyPatch(BodyIn):
    allowed_models: list[str] | None = None
    model_pins: dict[str, str] | None = Field(default=None, description="Omit to keep them.")
    expires_at: datetime | None = Field(
        default=None, description="Send null to remove the expiry; omit to keep it."
    )


class KeyOut(BodyOut):
    id: int
    name: str
    team: str = Field(alias="team.slug")
    prefix: str = Field(
        description="The first characters of the key; the key itself is never shown again."
    )
    owner: str | None = Field(default=None, alias="owner.username")
    allowed_models: list[str]
    model_pins: dict[str, str] = Field(
        description="The key's own pins; its team's apply to the models not pinned here."
    )
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class KeyRotate(BodyIn):
    grace_seconds: int = Field(
        default=3600,
        ge=0,
        le=30 * 24 * 3600,
        description="How long the old key keeps working; 0 revokes it at once.",
    )


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself. Shown once: store it now.")


# --- admin keys --------------------------------------------------------------------------------


class AdminKeyIn(BodyIn):
    name: str = Field(min_length=1, max_length=200)
    tenant: str | None = Field(
        default=None,
        max_length=64,
        description="Slug of the tenant it may manage; null for the whole platform.",
    )
    role: Literal["tenant_admin", "compliance", "finance", "developer"] = Field(
        default="tenant_admin",
        description="A tenant key's role, as a member's in the console: tenant_admin manages "
        "the tenant; compliance reads the audit trail; finance the cost report. Platform keys "
        "take no role.",
    )


class AdminKeyOut(BodyOut):
    id: int
    name: str
    tenant: str | None = Field(
        default=None, alias="tenant.slug", description="null: the whole platform"
    )
    role: str | None = Field(default=None, description="A tenant key's role; null: platform")

    @staticmethod
    def resolve_role(obj: Any) -> str | None:
        if isinstance(obj, dict):  # a response built from another's fields (AdminKeyCreated)
            return obj.get("role")
        return None if obj.tenant_id is None else str(obj.role)

    prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class AdminKeyCreated(AdminKeyOut):
    key: str = Field(description="The admin key itself. Shown once: store it now.")
