"""The canonical form of an audit record and the hashes and signatures built on it.

A record is hashed in two parts: its payload (what was said: request, response, tool calls and
results) and its content (everything else, plus the payload's hash). The chain links content
hashes, so a lawful erasure can remove a payload and keep the chain verifiable: the seal keeps the
payload's hash. See docs/adr/0006-audit-chain.md.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from gateway_site.crypto import derived_key

PAYLOAD_FIELDS = ("request_body", "response_body", "tool_calls", "tool_results")

# Version 1 of the canonical form: the record's columns when it was defined. A column added to
# AuditRecord later needs a version 2 (tests/audit/test_chain.py fails until it has one), so old
# seals keep verifying against the form they were made with.
CONTENT_FIELDS_V1 = (
    "id",
    "request_id",
    "tenant_id",
    "team_id",
    "api_key_id",
    "end_user",
    "feature",
    "client_context",
    "endpoint",
    "model_requested",
    "route_alias",
    "deployment_name",
    "provider_name",
    "upstream_model",
    "stream",
    "attempts",
    "guardrail_findings",
    "prompt_name",
    "prompt_version",
    "prompt_label",
    "prompt_fingerprint",
    "quota",
    "usage_estimated",
    "status",
    "http_status",
    "error_type",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "started_at",
    "completed_at",
)
# Version 2 adds how the deployments were ordered (the routing strategy, category and reason).
CONTENT_FIELDS_V2 = (*CONTENT_FIELDS_V1, "routing")
# Version 3 adds which columns are stored escaped (audit/storable.py): the hashes cover the text
# as stored, and this list says how to read it back.
CONTENT_FIELDS_V3 = (*CONTENT_FIELDS_V2, "stored_escaped")
# Version 4 adds the calling agent (routing/agent_identity.py).
CONTENT_FIELDS_V4 = (*CONTENT_FIELDS_V3, "agent")
CONTENT_FIELDS = {
    1: CONTENT_FIELDS_V1,
    2: CONTENT_FIELDS_V2,
    3: CONTENT_FIELDS_V3,
    4: CONTENT_FIELDS_V4,
}
CANONICAL_VERSION = 4
RECORD_COLUMNS = (*CONTENT_FIELDS_V4, *PAYLOAD_FIELDS)
GENESIS = "0" * 64


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, Decimal):
        # 10 places, as stored: the same amount always reads back as the same text.
        return format(value.quantize(Decimal("1e-10")), "f")
    return value


def canonical(values: dict[str, Any]) -> bytes:
    plain_values = {name: plain(value) for name, value in values.items()}
    options = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    try:
        return orjson.dumps(plain_values, option=options)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits: jsonb reads a large number (6e31 in a request) back as
        # one. Those alone are hashed as their decimal text, the same at sealing and checking.
        return orjson.dumps(_big_ints_as_text(plain_values), option=options)


def _big_ints_as_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, dict):
        return {key: _big_ints_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_big_ints_as_text(item) for item in value]
    return value


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_hash(row: dict[str, Any]) -> str:
    return sha256(canonical({name: row[name] for name in PAYLOAD_FIELDS}))


def content_hash(row: dict[str, Any], payload_digest: str, version: int = CANONICAL_VERSION) -> str:
    if version not in CONTENT_FIELDS:
        raise ValueError(f"unknown canonical form version {version}")
    values = {name: row[name] for name in CONTENT_FIELDS[version]}
    values["payload_sha256"] = payload_digest
    return sha256(canonical(values))


def link_hash(prev_hash: str, seq: int, content_digest: str) -> str:
    return sha256(f"{prev_hash}:{seq}:{content_digest}".encode())


def sign(message: dict[str, Any]) -> str:
    key = derived_key("audit-checkpoints")
    return hmac.new(key, canonical(message), hashlib.sha256).hexdigest()


def signature_valid(message: dict[str, Any], signature: str) -> bool:
    return hmac.compare_digest(sign(message), signature)
