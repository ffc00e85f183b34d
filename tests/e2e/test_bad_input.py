"""Every bad request gets a 4xx with an OpenAI-format error, never a 500 or a traceback."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

GOOD = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}


def _with(**changes: Any) -> bytes:
    body = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


# (name, method, path, headers-kind, body, expected status, a word the message must contain)
CASES = [
    ("no key", "POST", "/chat/completions", "none", _with(), 401, "Missing API key"),
    (
        "not a bearer header",
        "POST",
        "/chat/completions",
        "basic",
        _with(),
        401,
        "Malformed Authorization",
    ),
    ("unknown key", "POST", "/chat/completions", "unknown", _with(), 401, "Invalid API key"),
    ("revoked key", "POST", "/chat/completions", "revoked", _with(), 401, "revoked"),
    ("expired key", "POST", "/chat/completions", "expired", _with(), 401, "expired"),
    (
        "broken JSON",
        "POST",
        "/chat/completions",
        "good",
        b'{"model": "demo", ',
        400,
        "not valid JSON",
    ),
    ("empty body", "POST", "/chat/completions", "good", b"", 400, "empty"),
    ("a JSON array", "POST", "/chat/completions", "good", b"[1, 2]", 400, "JSON object"),
    ("no model", "POST", "/chat/completions", "good", _with(model=...), 400, "model"),
    ("no messages", "POST", "/chat/completions", "good", _with(messages=...), 400, "messages"),
    ("empty messages", "POST", "/chat/completions", "good", _with(messages=[]), 400, "messages"),
    (
        "unknown role",
        "POST",
        "/chat/completions",
        "good",
        _with(messages=[{"role": "wizard", "content": "x"}]),
        400,
        "messages[0].role",
    ),
    (
        "tool message without id",
        "POST",
        "/chat/completions",
        "good",
        _with(messages=[{"role": "tool", "content": "x"}]),
        400,
        "tool_call_id",
    ),
    ("stream as a string", "POST", "/chat/completions", "good", _with(stream="yes"), 400, "stream"),
    (
        "max_tokens zero",
        "POST",
        "/chat/completions",
        "good",
        _with(max_tokens=0),
        400,
        "max_tokens",
    ),
    (
        "temperature out of range",
        "POST",
        "/chat/completions",
        "good",
        _with(temperature=5),
        400,
        "temperature",
    ),
    (
        "stream_options without stream",
        "POST",
        "/chat/completions",
        "good",
        _with(stream_options={"include_usage": True}),
        400,
        "stream_options",
    ),
    (
        "tool without function",
        "POST",
        "/chat/completions",
        "good",
        _with(tools=[{"type": "function"}]),
        400,
        "function",
    ),
    ("unknown model", "POST", "/chat/completions", "good", _with(model="gpt-17"), 404, "gpt-17"),
    (
        "model the key may not use",
        "POST",
        "/chat/completions",
        "limited",
        _with(model="mock-gpt"),
        404,
        "mock-gpt",
    ),
    (
        "body too large",
        "POST",
        "/chat/completions",
        "good",
        _with(messages=[{"role": "user", "content": "x" * (9 * 1024 * 1024)}]),
        413,
        "larger than",
    ),
    ("unknown endpoint", "POST", "/chat/completion", "good", _with(), 404, "No endpoint"),
    ("wrong method", "GET", "/chat/completions", "good", b"", 405, "Method"),
    (
        "empty embeddings input",
        "POST",
        "/embeddings",
        "good",
        orjson.dumps({"model": "mock-embed", "input": ""}),
        400,
        "input",
    ),
    (
        "attribution header too long",
        "POST",
        "/chat/completions",
        "long-header",
        _with(),
        400,
        "x-gateway-end-user",
    ),
    (
        "metadata not strings",
        "POST",
        "/chat/completions",
        "good",
        _with(metadata={"a": 1}),
        400,
        "metadata",
    ),
]


def _headers(kind: str, world: Any) -> dict[str, str]:
    keys = {
        "good": world.key,
        "revoked": world.revoked_key,
        "expired": world.expired_key,
        "limited": world.limited_key,
        "unknown": "gw-not-a-real-key-at-all-000000000000",
        "long-header": world.key,
    }
    headers = {"content-type": "application/json"}
    if kind == "basic":
        headers["authorization"] = "Basic dXNlcjpwYXNz"
    elif kind in keys:
        headers["authorization"] = f"Bearer {keys[kind]}"
    if kind == "long-header":
        headers["x-gateway-end-user"] = "u" * 500
    return headers


@pytest.mark.parametrize(
    ("name", "method", "path", "auth", "body", "status", "word"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_gets_a_clear_openai_error(
    gateway, world, name, method, path, auth, body, status, word
):
    response = httpx.request(
        method,
        gateway.api_url + path,
        headers=_headers(auth, world),
        content=body or None,
        timeout=30,
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert word.lower() in error["message"].lower(), error["message"]
    assert "Traceback" not in response.text


def test_a_rejected_request_is_audited_with_its_reason(gateway, world):
    from tests.conftest import wait_for_record

    response = httpx.post(
        gateway.api_url + "/chat/completions",
        headers=_headers("good", world),
        content=_with(model="gpt-17"),
    )
    record = wait_for_record(response.headers["x-request-id"])
    assert (record.status, record.http_status, record.error_type) == (
        "rejected",
        404,
        "model_not_found",
    )
    assert record.model_requested == "gpt-17"
