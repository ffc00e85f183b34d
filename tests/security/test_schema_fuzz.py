"""A property-based fuzz of both APIs, generated from their own OpenAPI schemas (schemathesis).

For every operation, schemathesis generates requests that fit the schema (positive) and requests
that break it (negative: wrong types, out-of-range numbers, missing fields, garbage bodies); the
fuzz adds NUL characters and junk in paths, queries and headers. The property: the gateway never
answers 500, and every 4xx is in the answering API's own error format.

- `/api/v1` (management) runs in-process through Django's test client, inside the test's
  transaction: it is rolled back at the end, so the platform key may exercise every operation,
  deactivations and shared providers/routes included, without touching what other tests see.
  Each request runs in its own savepoint, rolled back after it: every case starts from the same
  data, and a value the database refused (an aborted transaction) is seen and reported.
- `/v1` (proxy) runs against a live gateway of its own (uvicorn, as deployed), with a key of a
  tenant made for the fuzz: the proxy changes no configuration, it only records its own calls.
  About half the bodies name a real route (`demo`, served by the mock provider) so they reach the
  pipeline rather than stop at "unknown model".

`make test` replays a fixed set of cases (derandomized); `make fuzz` draws new ones each run, and
whatever it finds becomes a named regression test next to the code it broke.

On /v1, 502/503/504 are accepted when the error is the upstream's (a provider failed, timed out
or has no capacity): that is the gateway's honest answer. A 500 is always a failure, and so is a
503 `audit_unavailable` (the gateway failed to store its own record) — except for a NUL inside a
JSON string of the body, which is legal JSON and is made storable by the audit work, not here.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest
import schemathesis
from django.db import DatabaseError, connection, transaction
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from audit.activity.services import SYSTEM
from gateway_site.api.services import admin_key_create
from tests.management.conftest import build_side
from tests.support.live import LiveGateway, start_gateway
from tests.support.world import build_tenant

# Per operation, mode and key; the totals are asserted below (at least 5,000 requests in all).
API_EXAMPLES = 22
PROXY_EXAMPLES = 150
PROXY_JUNK = 600
MIN_REQUESTS = 5_000
RANDOM = os.environ.get("GATEWAY_FUZZ_RANDOM") == "1"

_SENT_BY_CLIENT = {"user-agent", "accept-encoding", "connection", "content-length", "host"}
_UPSTREAM_CODES_OK = {502, 503, 504}


@dataclass
class Tally:
    sent: int = 0
    skipped: int = 0  # the client library itself refused to send it (e.g. a newline in a header)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[tuple[str, int, str], str] = field(default_factory=dict)
    refused_by_database: dict[str, str] = field(default_factory=dict)
    known_elsewhere: int = 0
    unsatisfiable: list[str] = field(default_factory=list)
    upstream: dict[str, int] = field(default_factory=dict)  # accepted 5xx on /v1, by code

    def count(self, status: int) -> None:
        self.sent += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def fail(self, operation: str, status: int, why: str, request: str) -> None:
        self.failures.setdefault((operation, status, why[:60]), f"{why}\n    {request}")

    def report(self) -> str:
        lines = [f"{len(self.failures)} distinct failures in {self.sent} requests:"]
        lines += [
            f"  {op} -> {status}: {detail}" for (op, status, _), detail in self.failures.items()
        ]
        return "\n".join(lines[:40])


def _schema(raw: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(json.loads(json.dumps(raw, default=str)))


def _drive(
    strategy: Any, examples: int, send: Callable[[Any], None], tally: Tally, label: str
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        # `make test` replays the same cases every run, so a red CI is always reproducible and
        # never a roll of the dice; `make fuzz` draws new ones (GATEWAY_FUZZ_RANDOM=1).
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate],  # collect every failure; no shrinking passes
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case: Any) -> None:
        send(case)

    try:
        run()
    except Unsatisfiable:
        # Nothing in the schema to break (e.g. a negative case of an operation without
        # parameters): what it could generate was sent; the junk strategy covers the rest.
        tally.unsatisfiable.append(label)


def _request_of(case: Any) -> tuple[str, str, dict[str, str], bytes | None, str]:
    """method, path?query, headers, body and content type, as schemathesis would send them."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    url = urlsplit(kwargs["url"])
    params = kwargs.get("params") or {}
    query = urlencode(params, doseq=True) if isinstance(params, dict) else str(params)
    target = url.path + (f"?{query}" if query else "") + (f"&{url.query}" if url.query else "")
    headers = {
        str(k): str(v)
        for k, v in (kwargs.get("headers") or {}).items()
        if str(k).lower() not in _SENT_BY_CLIENT
    }
    content_type = headers.pop("Content-Type", headers.pop("content-type", "application/json"))
    body: bytes | None = None
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body = data if isinstance(data, bytes) else str(data).encode("utf-8", "surrogatepass")
    return kwargs["method"], target, headers, body, content_type


def _describe(method: str, target: str, headers: dict[str, str], body: bytes | None) -> str:
    shown = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    return f"{method} {target[:300]!r} headers={shown!r} body={(body or b'')[:300]!r}"


# --- /api/v1, in-process -------------------------------------------------------------------


def _api_error_format(response: Any) -> str | None:
    """What is wrong with a 4xx body, or None if it is the management API's error format."""
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        return f"not the API's error JSON: {response.content[:120]!r}"
    if not isinstance(error, dict) or set(error) != {"code", "message", "fields"}:
        return f"error object not {{code, message, fields}}: {error!r}"[:200]
    if not (isinstance(error["message"], str) and error["message"] and error["code"]):
        return "empty code or message"
    return None


def _api_sender(key: str, tally: Tally, path_values: dict[str, str]) -> Callable[[Any], None]:
    client = Client(raise_request_exception=False)

    def send(drawn: tuple[Any, bool]) -> None:
        case, reach_real_objects = drawn
        if reach_real_objects:  # about half the cases name the fuzz tenant's real objects
            for name, value in path_values.items():
                if name in case.path_parameters:
                    case.path_parameters[name] = value
        try:
            method, target, headers, body, content_type = _request_of(case)
        except Exception:  # schemathesis could not serialise its own case
            tally.skipped += 1
            return
        headers["authorization"] = f"Bearer {key}"
        operation = f"{case.method.upper()} {case.path}"
        # Every request starts from the same data: a case that revokes the caller's own key or
        # deactivates its tenant does not turn every later case into a 401.
        savepoint = transaction.savepoint()
        response = client.generic(
            method, target, data=body or b"", content_type=content_type, headers=headers
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError as exc:
            # The answer was given, but a value reached PostgreSQL and was refused there.
            tally.refused_by_database.setdefault(operation, f"{exc}"[:200])
        transaction.savepoint_rollback(savepoint)
        tally.count(response.status_code)
        request = _describe(method, target, headers, body)
        if response.status_code >= 500:
            tally.fail(
                operation,
                response.status_code,
                response.content[:200].decode(errors="replace"),
                request,
            )
        elif response.status_code >= 400 and (problem := _api_error_format(response)):
            tally.fail(operation, response.status_code, problem, request)

    return send


@pytest.mark.django_db
@pytest.mark.timeout(360)  # one to two minutes; more on a host busy with other work
def test_the_management_api_never_fails_on_generated_input() -> None:
    """In the test's transaction, rolled back at the end: the platform key may do anything."""
    started = time.monotonic()
    side = build_side("fuzzco", "Fuzz")
    _, platform = admin_key_create(name="fuzz", tenant=None, created_by="fuzz", actor=SYSTEM)
    raw = Client().get("/api/v1/openapi.json").json()
    schema = _schema(raw)
    operations = [result.ok() for result in schema.get_all_operations()]
    real = {
        "slug": side.tenant.slug,
        "key_id": str(side.key.pk),
        "team": side.team.slug,
        "username": side.username,
        "limit_id": str(side.limit_id),
        "budget_id": str(side.budget_id),
    }
    tally = Tally()
    for key in (side.admin_key, platform.plaintext):
        send = _api_sender(key, tally, real)
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                label = f"{operation.method.upper()} {operation.path}"
                _drive(
                    st.tuples(operation.as_strategy(generation_mode=mode), st.booleans()),
                    API_EXAMPLES,
                    send,
                    tally,
                    label,
                )

    elapsed = time.monotonic() - started
    print(
        f"\n/api/v1 fuzz: {tally.sent} requests ({tally.skipped} not sendable) in {elapsed:.0f} s; "
        f"statuses {dict(sorted(tally.statuses.items()))}; "
        f"values refused by the database: {tally.refused_by_database or 'none'}"
    )
    FUZZ_TOTALS["api"] = tally.sent
    assert not tally.failures, tally.report()
    assert tally.sent >= 3_000, tally.sent


# --- /v1, against a live gateway of its own -------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_gateway(world: Any) -> Iterator[LiveGateway]:
    # Its own process: circuit breakers and caches the fuzz trips are not those of other tests.
    live = start_gateway()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def fuzz_key(world: Any, django_db_blocker: Any) -> str:
    """A committed tenant of its own: its audit records and spend are nobody else's."""
    with django_db_blocker.unblock():
        name = f"fuzz-{time.time_ns()}"
        fuzz = build_tenant("fuzz-proxy", name="Fuzz proxy tenant", teams=["fuzzers"], keys=[name])
    return fuzz.key(name)


def _proxy_error_format(response: httpx.Response, path: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.content[:120]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return f"no error.message: {body!r}"[:200]
    if path.startswith("/v1/messages") and body.get("type") != "error":
        return "an Anthropic endpoint answered outside Anthropic's error format"
    return None


def _has_nul(body: bytes | None) -> bool:
    return bool(body) and (b"\\u0000" in body or b"\x00" in body)  # type: ignore[operator]


def _proxy_sender(
    gateway: LiveGateway, key: str, tally: Tally
) -> tuple[Callable[[str, str, dict[str, str], bytes | None, str], None], httpx.Client]:
    client = httpx.Client(base_url=gateway.url, timeout=30)

    def send_raw(
        method: str, target: str, headers: dict[str, str], body: bytes | None, content_type: str
    ) -> None:
        headers = {**headers, "authorization": f"Bearer {key}", "content-type": content_type}
        try:
            response = client.request(method, target, headers=headers, content=body)
        except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError, ValueError):
            tally.skipped += 1  # httpx will not send it (e.g. a control character in a header)
            return
        operation = f"{method} {urlsplit(target).path[:60]}"
        request = _describe(method, target, headers, body)
        status = response.status_code
        tally.count(status)
        if status >= 500:
            code = _code_of(response)
            if status == 503 and code == "audit_unavailable" and _has_nul(body):
                tally.known_elsewhere += 1  # NUL in a JSON string: the audit work makes it storable
            elif status in _UPSTREAM_CODES_OK and code not in (
                "internal_error",
                "audit_unavailable",
            ):
                what = f"{status} {code or _safe_json(response).get('error', {}).get('type')}"
                tally.upstream[what] = tally.upstream.get(what, 0) + 1
                if problem := _proxy_error_format(response, urlsplit(target).path):
                    tally.fail(operation, status, problem, request)
            else:
                tally.fail(operation, status, response.text[:200], request)
        elif status >= 400:
            if response.content.startswith(b"Invalid HTTP request"):
                return  # uvicorn's own refusal of a malformed request, before the gateway
            if problem := _proxy_error_format(response, urlsplit(target).path):
                tally.fail(operation, status, problem, request)

    return send_raw, client


# Anthropic's error format has no code: the gateway's own failures are known by their message.
_OWN_FAILURES = {
    "its audit record could not be stored": "audit_unavailable",
    "failed unexpectedly": "internal_error",
}


def _code_of(response: httpx.Response) -> str | None:
    error = _safe_json(response).get("error") or {}
    if not isinstance(error, dict):
        return None
    if error.get("code"):
        return str(error["code"])
    message = str(error.get("message") or "")
    return next((code for text, code in _OWN_FAILURES.items() if text in message), None)


def _safe_json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _with_real_model(drawn: tuple[Any, bool]) -> Any:
    """About half the bodies name a real route, so they reach the pipeline and the provider."""
    case, real = drawn
    if real and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = "demo"
    return case


_JUNK_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_JUNK_PATHS = [
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/models",
    "/v1/models/{junk}",
    "/v1/{junk}",
]


@st.composite
def _junk_request(draw: Any) -> tuple[str, str, dict[str, str], bytes | None, str]:
    """What the schema does not describe: NULs and junk in paths, queries, headers and bodies."""
    path = draw(st.sampled_from(_JUNK_PATHS))
    junk = draw(_JUNK_TEXT)
    target = path.replace("{junk}", quote(junk, safe="") or "x")
    if draw(st.booleans()):
        target += "?" + urlencode({draw(_JUNK_TEXT) or "q": draw(_JUNK_TEXT)})
    headers = {
        name: draw(_JUNK_TEXT)
        for name in draw(
            st.lists(
                st.sampled_from(
                    [
                        "x-gateway-end-user",
                        "x-gateway-feature",
                        "x-gateway-client-id",
                        "x-gateway-session-id",
                        "x-gateway-dry-run",
                        "x-gateway-category",
                        "anthropic-version",
                        "anthropic-beta",
                    ]
                ),
                max_size=3,
                unique=True,
            )
        )
    }
    body = draw(
        st.one_of(
            st.none(),
            st.binary(max_size=200),
            st.builds(
                lambda value: json.dumps(value).encode(),
                st.recursive(
                    st.none() | st.booleans() | st.integers() | st.floats() | _JUNK_TEXT,
                    lambda inner: (
                        st.lists(inner, max_size=4) | st.dictionaries(_JUNK_TEXT, inner, max_size=4)
                    ),
                    max_leaves=12,
                ),
            ),
            st.builds(
                lambda model, text: json.dumps(
                    {"model": model, "messages": [{"role": "user", "content": text}]}
                ).encode(),
                st.sampled_from(["demo", "gpt-4o", ""]),
                _JUNK_TEXT,
            ),
        )
    )
    method = draw(st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE"]))
    content_type = draw(
        st.sampled_from(["application/json", "text/plain", "", "application/x-www-form-urlencoded"])
    )
    return method, target, headers, body, content_type or "application/json"


@pytest.mark.django_db  # sets the test database up when this test runs alone
@pytest.mark.timeout(360)  # about a minute and a half; more on a host busy with other work
def test_the_proxy_never_fails_on_generated_input(fuzz_gateway: LiveGateway, fuzz_key: str) -> None:
    started = time.monotonic()
    raw = httpx.get(fuzz_gateway.url + "/v1/openapi.json", timeout=10).json()
    schema = _schema(raw)
    tally = Tally()
    send_raw, client = _proxy_sender(fuzz_gateway, fuzz_key, tally)

    def send(case: Any) -> None:
        try:
            send_raw(*_request_of(case))
        except Exception:  # schemathesis could not serialise its own case
            tally.skipped += 1

    with client:
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = st.tuples(
                    operation.as_strategy(generation_mode=mode), st.booleans()
                ).map(_with_real_model)
                _drive(strategy, PROXY_EXAMPLES, send, tally, label)
        _drive(_junk_request(), PROXY_JUNK, lambda r: send_raw(*r), tally, "junk")

    elapsed = time.monotonic() - started
    print(
        f"\n/v1 fuzz: {tally.sent} requests ({tally.skipped} not sendable) in {elapsed:.0f} s; "
        f"statuses {dict(sorted(tally.statuses.items()))}; "
        f"upstream 5xx accepted: {tally.upstream or 'none'}; "
        f"NUL-in-body audit refusals left to the audit work: {tally.known_elsewhere}"
    )
    FUZZ_TOTALS["proxy"] = tally.sent
    assert not tally.failures, tally.report()
    assert tally.sent >= 500, tally.sent


FUZZ_TOTALS: dict[str, int] = {}


def test_the_fuzz_sent_enough_requests() -> None:
    if len(FUZZ_TOTALS) < 2:
        pytest.skip("runs after both fuzz tests (run the whole file)")
    assert sum(FUZZ_TOTALS.values()) >= MIN_REQUESTS, FUZZ_TOTALS
