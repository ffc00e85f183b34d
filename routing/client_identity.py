"""Who is behind a call, read from what known clients send about themselves.

Claude Code puts its identity in Anthropic's `metadata.user_id` (which the Messages translation
carries as `user`): since v2.1.78 a JSON string `{"device_id", "account_uuid", "session_id"}`,
before that `user_<device hash>_account_<uuid>_session_<uuid>`. Taken as it is, it changes with
every session, so per-user limits would be per session: the end user is the account (the device
when signed in with an API key and no account), and the session goes to the client context.

Codex sends `client_metadata` (session, thread and turn ids, its installation id) in its
Responses requests: it is recorded as the client context, its `session_id` as the session, and
its installation id is the end user when the request names none (Codex signed in with an API
key sends no account: the installation is the person, as Claude Code's device is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

_LEGACY = re.compile(
    r"^user_(?P<device>[A-Za-z0-9]+)_account_(?P<account>[A-Za-z0-9-]*)_session_(?P<session>[A-Za-z0-9-]+)$"
)
_JSON_KEYS = frozenset({"device_id", "account_uuid", "session_id"})
_MAX_VALUE = 200  # the audit columns' width


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    end_user: str
    context: dict[str, str] = field(default_factory=dict)


def _clean(value: Any) -> str:
    return value.strip()[:_MAX_VALUE] if isinstance(value, str) else ""


def claude_code_identity(user: str) -> ClientIdentity | None:
    """Claude Code's `metadata.user_id`, either format; None for any other user string."""
    parts: dict[str, str]
    if match := _LEGACY.match(user):
        parts = {
            "device_id": match["device"],
            "account_uuid": match["account"],
            "session_id": match["session"],
        }
    elif user.startswith("{"):
        try:
            parsed = orjson.loads(user)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(parsed, dict) or not _JSON_KEYS & parsed.keys():
            return None
        parts = {key: _clean(parsed.get(key)) for key in _JSON_KEYS}
    else:
        return None
    end_user = parts["account_uuid"] or parts["device_id"]
    if not end_user:
        return None
    context = {"client": "claude-code"}
    context.update({key: value for key, value in parts.items() if value})
    return ClientIdentity(end_user=end_user, context=context)


def codex_context(client_metadata: Any) -> dict[str, Any]:
    """Codex's `client_metadata` for the record: kept whole, its session id lifted out."""
    if not isinstance(client_metadata, dict) or not client_metadata:
        return {}
    context: dict[str, Any] = {"client_metadata": client_metadata}
    if session := _clean(client_metadata.get("session_id")):
        context["session_id"] = session
    return context


def codex_end_user(client_metadata: Any) -> str:
    """Codex's installation id (`x-codex-installation-id`), or ""."""
    if not isinstance(client_metadata, dict):
        return ""
    return _clean(client_metadata.get("x-codex-installation-id"))
