"""Single sign-on: mozilla-django-oidc, with the identity provider's claims mapped to memberships.

The user is found or created by the `preferred_username` claim (falling back to `email`, when the
provider says it is verified); an existing account is signed into only when it was made for SSO
(no password, neither superuser nor staff). The claim named by GATEWAY_OIDC_ROLES_CLAIM (default
`gateway_roles`) lists `tenant:role` entries, optionally `tenant:role:team+team`; at each sign-in
the user's memberships become exactly those (docs/architecture.md, "Console"). A user with no
entry the gateway knows is refused.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from audit.activity.services import Actor
from tenants import services

logger = logging.getLogger(__name__)


def claim_username(claims: dict[str, Any]) -> str:
    # An email the provider has not verified is anyone's to type: it names no account.
    verified = claims.get("email_verified") in (True, "true")
    email = claims.get("email") if verified else ""
    return str(claims.get("preferred_username") or email or "")[:150]


def claim_roles(claims: dict[str, Any]) -> list[str]:
    value = claims.get(settings.OIDC_ROLES_CLAIM) or []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(entry) for entry in value]


class ConsoleOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claim_username(claims)) and bool(claim_roles(claims))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[Any]:
        return get_user_model().objects.filter(username=claim_username(claims))

    def create_user(self, claims: dict[str, Any]) -> Any:
        username = claim_username(claims)
        # The rules of every other new account: no look-alike of an existing one (control or
        # compatibility characters, another's name in other case).
        try:
            services.username_check(username)
        except services.TenancyError as refused:
            raise SuspiciousOperation(f"SSO username {username!r} refused: {refused}") from None
        accounts = get_user_model().objects
        if accounts.filter(username__iexact=username).exists():
            raise SuspiciousOperation(
                f"SSO username {username!r} is another account's in other case"
            )
        user = accounts.create_user(username=username, email=str(claims.get("email") or ""))
        user.set_unusable_password()
        user.save()
        return self.update_user(user, claims)

    def verify_token(self, token: str, **kwargs: Any) -> Any:
        payload = super().verify_token(token, **kwargs)
        # The library leaves the audience unchecked: a token the provider minted for another of
        # its clients (a code obtained through another application) signs nobody in here.
        audience = payload.get("aud")
        if self.OIDC_RP_CLIENT_ID not in (audience if isinstance(audience, list) else [audience]):
            raise SuspiciousOperation("ID token not issued for this client")
        return payload

    def get_user(self, user_id: Any) -> Any:
        # Each request of a session: a deactivated account's session ends, as with a password.
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        # The username is whatever the provider says, not a proof of who owns the account: a
        # superuser's, staff's or password account is never signed into (nor re-membered) by SSO.
        if user.is_superuser or user.is_staff or user.has_usable_password():
            raise SuspiciousOperation(f"SSO refused for local account {user.get_username()}")
        memberships = services.memberships_sync_from_claims(
            user=user,
            entries=claim_roles(claims),
            actor=Actor("sso", f"single sign-on: {user.get_username()}", user.pk),
        )
        if not memberships:
            logger.warning("SSO user %s has no role in a known tenant", user.get_username())
        return user
