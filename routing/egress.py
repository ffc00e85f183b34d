"""The egress policy from the settings, and the save-time check of a URL against it.

The rules themselves are in `routing/core/egress.py` (pure); the connect-time check is in the
shared HTTP client (`routing/core/egress_transport.py`, built by `routing/runtime.py`).
"""

from __future__ import annotations

import socket

from django.conf import settings

from routing.core.egress import EgressPolicy


def egress_policy() -> EgressPolicy:
    """GATEWAY_EGRESS_ALLOW, GATEWAY_EGRESS_ALLOW_PRIVATE and GATEWAY_EGRESS_ALLOW_LOOPBACK."""
    policy: EgressPolicy = settings.GATEWAY_EGRESS
    return policy


def egress_url_check(url: str) -> None:
    """Raise `EgressRefused` (naming its rule) if the policy forbids `url` or an address its
    host resolves to now. A name this host cannot resolve passes: the connection is checked
    again when it is opened."""
    egress_policy().check_url(url, resolve=_resolve)


def _resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
