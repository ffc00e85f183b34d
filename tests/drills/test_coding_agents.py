"""Drill: the coding agents developers run, OpenAI's Codex CLI and Claude Code, finish a
two-step tool task through the gateway with their default settings.

Each CLI is installed from npm at a pinned version (scripts/ensure_clients.sh, into the
git-ignored var/clients/) and run non-interactively (`codex exec`, `claude -p`) in a scratch
project holding notes.txt. The client is told nothing but the gateway's URL and a virtual key:
it asks for its own default model name, which a pattern route serves (`gpt-*` on an
OpenAI-format deployment, `claude-*` on an Anthropic-format one), and sends its requests as it
sends them to its vendor (Codex: a WebSocket attempt, then streamed `/v1/responses` with its tools
in the input; Claude Code: streamed `/v1/messages` with adaptive thinking, effort, context
management and betas). The mock provider is scripted (`tool_script`): its first answer has the
agent run a shell command that reads the file, and once the command's output comes back, its
answer is text quoting it.

What a user would notice: the CLI exits 0 and answers with the file's contents; the audit trail
holds both model calls, the tool the model called, the tool's output, the end user (Codex's
installation, Claude Code's device: never the session) and the session the CLI named.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from routing import services as routing
from routing.core.translate.anthropic_common import anthropic_id
from routing.models import Deployment, Route
from tenants import services as tenants

pytestmark = [pytest.mark.e2e, pytest.mark.django_db, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "var" / "clients" / "node_modules" / ".bin"
PATTERNS = ("gpt-*", "claude-*")
NOTE = "the launch code is tangerine-42"
TASK = "What does notes.txt say?"
CODEX_MODEL = "gpt-6.2-sol"  # what Codex 0.171 asks for by default
CLAUDE_MODEL = "claude-opus-5-5"  # and Claude Code 2.1.332
# Codex's default model works in "code mode": its one shell-capable tool is `exec`, a freeform
# tool that runs JavaScript in which the other tools (exec_command, apply_patch...) are functions.
CODEX_CODE = "const r = await tools.exec_command({cmd: 'cat notes.txt'});\ntext(r.output);"
CLAUDE_BASH = {"command": "cat notes.txt", "description": "Read the notes"}


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DEVICE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Agents:
    key: str
    key_id: int


@pytest.fixture(scope="module")
def clients() -> Path:
    """The pinned CLIs, installed on first use; skipped only when npm itself is missing."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "ensure_clients.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode == 3:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stdout + done.stderr
    return BIN


@pytest.fixture(scope="module")
def agents(world: Any, gateway: Any, django_db_blocker: Any) -> Iterator[Agents]:
    """A team of developers with a key for their laptops."""
    with django_db_blocker.unblock():
        tenant = tenants.tenant_apply(slug=f"agents-{uuid.uuid4().hex[:6]}", name="Agents")
        team = tenants.team_apply(tenant=tenant, slug="devs", name="Devs", allowed_models=[])
        key, material = tenants.key_create(team=team, name="laptops")
    yield Agents(material.plaintext, key.pk)
    with django_db_blocker.unblock():
        Route.objects.filter(alias__in=PATTERNS).delete()
    time.sleep(0.6)  # the live gateway's routing table forgets them


@pytest.fixture(scope="module")
def responses_native(mock_server: Any, django_db_blocker: Any) -> Iterator[str]:
    """A deployment whose provider speaks the Responses API itself (kind openai-responses):
    Codex's requests reach it as Codex sent them."""
    from routing.models import Provider

    with django_db_blocker.unblock():
        provider = routing.provider_upsert(
            name="mock-responses-agents",
            kind="openai-responses",
            base_url=mock_server.base_url + "/v1",
            credential="sk-responses-agents",
            region="us",
        )
        deployment = routing.deployment_upsert(
            name="mock-gpt-native",
            provider=provider,
            upstream_model="mock-gpt-native-1",
            input_price_per_mtok=Decimal("2.5"),
            output_price_per_mtok=Decimal("10"),
        )
    yield deployment.name
    with django_db_blocker.unblock():
        Route.objects.filter(alias__in=PATTERNS).delete()
        Deployment.objects.filter(pk=deployment.pk).update(is_active=False)
        Provider.objects.filter(pk=provider.pk).update(is_active=False)


def responses_tools(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every tool a Responses body offers: `tools`, `additional_tools` items, namespaces open."""
    tools = list(body.get("tools") or [])
    for item in body.get("input") or []:
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            tools += item["tools"]
    for tool in tools:
        yield tool
        if tool.get("type") == "namespace":
            yield from tool["tools"]


def route(gateway: Any, agents: Agents, pattern: str, model: str, deployment: str) -> None:
    """`pattern` served by `deployment` only, once the live gateway's routing table says so."""

    def upsert() -> None:  # on a connection of its own: committed, unlike the test's
        from django.db import connection

        try:
            routing.route_upsert(
                alias=pattern,
                description="",
                deployments=[Deployment.objects.get(name=deployment)],
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(upsert).result()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = httpx.post(
            f"{gateway.api_url}/chat/completions",
            headers={"authorization": f"Bearer {agents.key}"},
            json={"model": model, "messages": [{"role": "user", "content": "which route?"}]},
            timeout=10,
        )
        if answer.headers.get("x-gateway-deployment") == deployment:
            return
        time.sleep(0.2)
    raise AssertionError(f"the gateway never served {model} by {deployment}")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small git project whose notes only the tool can read."""
    path = tmp_path / "project"
    path.mkdir()
    (path / "notes.txt").write_text(NOTE + "\n")
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


@pytest.fixture
def scripted(mock_server: Any) -> Iterator[Any]:
    # The shared mock keeps its last 2,000 requests: after a drill that sent more, a slice from
    # "how many were logged" onward would always be empty. Each test starts from an empty log.
    mock_server.app.requests.clear()
    yield mock_server
    mock_server.configure()  # back to the startup behaviour


def run_cli(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "TERM": "dumb"}
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**base, **env},
        stdin=subprocess.DEVNULL,  # both CLIs read a piped stdin as more prompt
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def called(call: dict[str, Any]) -> tuple[str, str]:
    """A recorded freeform call: chat's own `custom` form, or (from a provider without freeform
    tools) a function whose one argument `input` holds the text."""
    if "custom" in call:
        return call["custom"]["name"], call["custom"]["input"]
    return call["function"]["name"], json.loads(call["function"]["arguments"])["input"]


def records_of(agents: Agents, endpoint: str, since: int) -> list[Any]:
    from audit.models import AuditRecord

    deadline = time.monotonic() + 5
    while True:
        records = list(
            AuditRecord.objects.filter(
                api_key_id=agents.key_id, endpoint=endpoint, id__gt=since
            ).order_by("id")
        )
        if all(r.status != "in_progress" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def last_record_id() -> int:
    from audit.models import AuditRecord

    last = AuditRecord.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


@pytest.mark.parametrize(
    "deployment",
    ["mock-gpt", "claude-fallback", "native"],
    ids=["openai", "anthropic", "responses-native"],
)
def test_codex_exec_runs_a_command_and_answers_through_the_gateway(
    clients,
    agents,
    gateway,
    scripted,
    project,
    tmp_path,
    deployment,
    record_property,
    responses_native,
):
    deployment = responses_native if deployment == "native" else deployment
    route(gateway, agents, "gpt-*", CODEX_MODEL, deployment)
    home = tmp_path / "codex-home"
    home.mkdir()
    # The one setting: where the OpenAI API is (Codex's own `openai_base_url`).
    (home / "config.toml").write_text(f'openai_base_url = "{gateway.api_url}"\n')
    scripted.configure(tool_script={"exec": CODEX_CODE})
    since = last_record_id()
    logged = len(scripted.requests())
    started = time.monotonic()

    done = run_cli(
        [str(clients / "codex"), "exec", TASK],
        cwd=project,
        env={"HOME": str(tmp_path), "CODEX_HOME": str(home), "CODEX_API_KEY": agents.key},
    )
    elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stderr[-4000:]
    answer = done.stdout.strip()
    assert answer.startswith("Tool result received:") and answer.endswith(NOTE), answer
    # The WebSocket it tries first is refused in a way it takes at once (one attempt, no retries).
    assert done.stderr.count("failed to connect to Responses WebSocket") == 1, done.stderr[-4000:]
    assert elapsed < 60

    calls = records_of(agents, "responses", since)
    assert [(r.status, r.http_status) for r in calls] == [("success", 200)] * 2
    first, second = calls
    assert (first.model_requested, first.route_alias) == (CODEX_MODEL, "gpt-*")
    assert {r.deployment_name for r in calls} == {deployment}
    assert [called(c) for c in first.tool_calls] == [("exec", CODEX_CODE)]
    assert second.tool_calls == []
    (result,) = second.tool_results
    assert result["tool_call_id"] == first.tool_calls[0]["id"] and NOTE in result["content"]
    for record in calls:
        metadata = record.client_context["client_metadata"]
        assert record.client_context["session_id"] == metadata["session_id"]
        assert record.end_user == metadata["x-codex-installation-id"]
        assert record.end_user != record.client_context["session_id"]
    assert first.client_context["session_id"] == second.client_context["session_id"]

    # The provider was offered Codex's tools, its code-mode `exec` with its grammar.
    sent = next(r for r in scripted.requests()[logged:] if r["body"])
    offered = sent["body"].get("tools")
    if deployment == "mock-gpt-native":  # Codex's own request, as it sent it
        assert sent["path"] == "/v1/responses" and sent["body"]["store"] is False
        exec_tool = next(t for t in responses_tools(sent["body"]) if t.get("name") == "exec")
        assert exec_tool["type"] == "custom" and exec_tool["format"]["syntax"] == "lark"
    elif deployment == "mock-gpt":
        exec_tool = next(t["custom"] for t in offered if t.get("type") == "custom")
        assert exec_tool["format"]["syntax"] == "lark"
    else:  # a function taking the text, the grammar in its description
        exec_tool = next(t for t in offered if t["name"] == "exec")
        assert exec_tool["input_schema"]["required"] == ["input"]
        assert "@exec" in exec_tool["description"]
    record_property(
        "observed",
        f"codex exec via {deployment}: exec -> cat notes.txt -> answer, "
        f"{len(calls)} calls recorded with tool, end user and session, {elapsed:.1f} s",
    )


@pytest.mark.parametrize("deployment", ["claude-fallback", "mock-gpt"], ids=["anthropic", "openai"])
def test_claude_code_runs_bash_and_answers_through_the_gateway(
    clients, agents, gateway, scripted, project, tmp_path, deployment, record_property
):
    route(gateway, agents, "claude-*", CLAUDE_MODEL, deployment)
    scripted.configure(tool_script={"Bash": CLAUDE_BASH})
    since = last_record_id()
    logged = len(scripted.requests())

    started = time.monotonic()
    done = run_cli(
        [str(clients / "claude"), "-p", TASK],
        cwd=project,
        env={
            "HOME": str(tmp_path),
            "ANTHROPIC_BASE_URL": gateway.url,
            "ANTHROPIC_API_KEY": agents.key,
        },
    )

    elapsed = time.monotonic() - started
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert done.stdout.strip() == f"Tool result received: {NOTE}"

    calls = records_of(agents, "messages", since)
    assert calls and all((r.status, r.http_status) == ("success", 200) for r in calls)
    with_tool = [r for r in calls if r.tool_calls]
    assert len(with_tool) == 1, [r.tool_calls for r in calls]
    (call,) = with_tool[0].tool_calls
    assert call["function"]["name"] == "Bash"
    assert json.loads(call["function"]["arguments"]) == CLAUDE_BASH
    answered = [r for r in calls if r.tool_results]
    # On a translated route Claude Code sees the provider's id behind Anthropic's prefix
    # (`toolu_call_…`) and sends its result back under that id: the record links the two.
    seen_id = anthropic_id(call["id"], "toolu_")
    assert [r.tool_results for r in answered] == [[{"tool_call_id": seen_id, "content": NOTE}]]
    assert {(r.model_requested, r.deployment_name) for r in calls} == {(CLAUDE_MODEL, deployment)}
    # Its `metadata.user_id` names device, account (none with an API key) and session: the
    # device is the end user, for every call of the session.
    sessions = {r.client_context["session_id"] for r in calls}
    assert len(sessions) == 1 and UUID.match(sessions.pop())
    for record in calls:
        assert record.client_context["client"] == "claude-code"
        assert record.end_user == record.client_context["device_id"]
        assert DEVICE.match(record.end_user)

    upstream = [r for r in scripted.requests()[logged:] if r["body"] and r["body"].get("tools")]
    body = upstream[0]["body"]
    if deployment == "claude-fallback":  # passed natively: every field and beta reaches it
        assert body["thinking"]["type"] == "adaptive"
        assert "effort" in body["output_config"]
        assert body["context_management"]["edits"]
        assert '"cache_control"' in json.dumps(body["system"])  # prompt caching on its blocks
        assert "system" in [m["role"] for m in body["messages"]]
        assert "context-management-2025-06-27" in upstream[0]["headers"]["anthropic-beta"]
    else:  # translated: effort mapped, what has no OpenAI form named, never dropped silently
        assert body["reasoning_effort"] == "medium"
        assert all(r.routing["dropped_fields"] == ["context_management"] for r in calls)
    record_property(
        "observed",
        f"claude -p via {deployment}: Bash cat notes.txt -> answer, "
        f"{len(calls)} calls recorded with tool, end user and session, {elapsed:.1f} s",
    )
