"""One `tools/call` through the gateway, in order:

1. resolve `<server>__<tool>` among what the caller's team and key are granted (anything else is
   an unknown tool, so a hidden tool's existence is not disclosed); argument constraints;
2. the per-tool rate limit (calls in any 60 s, per key, in the quota store: Redis);
3. guardrails on the arguments;
4. a priced tool's price reserved in the caller's budgets (spend.py; a JSON-RPC error if spent);
5. the call on the worker's write-ahead journal, then its audit record committed as
   `in_progress`, before any byte goes upstream;
6. the upstream call with the gateway's credential for the server: a static one, a token the
   gateway obtained with its client credentials (oauth.py), or one exchanged for the end user's
   (token_exchange.py);
7. guardrails on the result (size, PII, injection: block, or flag);
8. the record completed, with the call's price; only then does the agent get the result, and
   the reservation is settled.

Every call, refused or not, has its record in the tenant's audit chain; a call cut by the
worker's shutdown, or left behind by a worker killed outright, is completed as `interrupted`, as
the proxy's are.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import mcp_types as types
from django.utils import timezone
from mcp.shared.exceptions import MCPError

from audit.entries import AuditEntry
from audit.journal import JournalError
from audit.models import AuditStatus
from audit.writer import AuditWriteError
from routing.errors import GatewayError
from routing.mcp_gateway import metrics, spend
from routing.mcp_gateway.guard import guard_arguments, guard_result
from routing.mcp_gateway.models import ENDPOINT, TOOL_SEPARATOR
from routing.mcp_gateway.oauth import GRANT_TYPE as CLIENT_CREDENTIALS
from routing.mcp_gateway.oauth import TokenFailure
from routing.mcp_gateway.table import Access, Upstream
from routing.mcp_gateway.token_exchange import SUBJECT_HEADER
from routing.mcp_gateway.upstream import UpstreamFailure
from tenants.auth import KeyIdentity
from tenants.quotas.core.checks import WindowCheck

if TYPE_CHECKING:
    from routing.runtime import GatewayRuntime
    from tenants.quotas.engine import Admission

logger = logging.getLogger(__name__)
JSON = dict[str, Any]
INTERRUPTED = (
    "The call was cut while the tool ran (the gateway stopped, or the agent went away); the "
    "tool may have run."
)


@dataclass(frozen=True, slots=True)
class Caller:
    identity: KeyIdentity
    parent_request: str = ""  # x-gateway-parent-request: the model request that asked for it
    end_user: str = ""  # x-gateway-end-user: on whose behalf
    agent: str = ""  # the client's User-Agent
    # x-gateway-subject-token: the end user's own token, for servers that act as them (RFC 8693)
    subject_token: str = field(default="", repr=False)


class ToolGateway(Protocol):
    """What a tool call uses of the worker's MCP endpoint (routing/mcp_gateway/endpoint.py,
    `McpGateway`), which calls it: typed here so the two do not import each other."""

    runtime: GatewayRuntime

    async def accesses(self, caller: Caller) -> list[Access]: ...

    def lists(self, upstream: Upstream, tool: str) -> bool: ...

    async def request(
        self, upstream: Upstream, caller: Caller, method: str, params: JSON
    ) -> JSON: ...


@dataclass
class _Call:
    caller: Caller
    name: str
    arguments: JSON
    started: float = field(default_factory=time.monotonic)
    entry: AuditEntry = field(init=False)
    price: Decimal = Decimal(0)
    completing: bool = False  # the final record is on its way to the writer
    completed: bool = False  # the final record is committed
    answered: bool = False  # the upstream answered: the call ran, and is charged
    known: bool = False  # its tool is named by its grant or in its server's list (a metrics label)

    def __post_init__(self) -> None:
        identity = self.caller.identity
        context: JSON = {"mcp.method.name": "tools/call", "gen_ai.tool.name": self.name}
        if self.caller.parent_request:
            context["parent_request"] = self.caller.parent_request
        if self.caller.agent:
            context["agent"] = self.caller.agent
        self.entry = AuditEntry(
            request_id=f"mcp-{uuid.uuid4().hex}",
            tenant_id=identity.tenant_id,
            team_id=identity.team_id,
            api_key_id=identity.key_id,
            endpoint=ENDPOINT,
            started_at=timezone.now(),
            status=AuditStatus.IN_PROGRESS,
            end_user=self.caller.end_user,
            client_context=context,
            model_requested=self.name[:200],
            request_body={"method": "tools/call", "name": self.name, "arguments": self.arguments},
            tool_calls=[{"name": self.name, "arguments": self.arguments}],
        )

    def finish(self, status: str, *, error_type: str = "", message: str = "") -> None:
        self.entry.status = status
        self.entry.error_type = error_type
        self.entry.error_message = message
        self.entry.latency_ms = round((time.monotonic() - self.started) * 1000, 3)
        self.entry.completed_at = timezone.now()


def _resolve(accesses: list[Access], name: str) -> tuple[Access, str] | None:
    server, separator, tool = name.partition(TOOL_SEPARATOR)
    if not separator or not tool:
        return None
    for access in accesses:
        if access.upstream.name == server and access.grant.allows(tool):
            return access, tool
    return None


def _tool_error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


async def call_tool(
    gateway: ToolGateway, caller: Caller, params: types.CallToolRequestParams
) -> types.CallToolResult:
    call = _Call(caller, params.name, dict(params.arguments or {}))
    outcome = "error"
    try:
        result = await _governed(gateway, call)
        outcome = (
            "refused"
            if call.entry.status == AuditStatus.REJECTED
            else ("error" if result.is_error else "ok")
        )
        return result
    except MCPError:
        outcome = "error" if call.entry.status == AuditStatus.UPSTREAM_ERROR else "refused"
        raise
    except Exception:
        # A fault of the gateway's own: a JSON-RPC error that names no internals (the SDK would
        # send the exception's text under code 0, which JSON-RPC does not define).
        logger.exception("MCP tool call %s failed in the gateway", call.name)
        raise MCPError(types.INTERNAL_ERROR, "The gateway failed to handle the call.") from None
    finally:
        # A name nobody named (not granted, or allowed by a `*` grant but never listed by its
        # server) is the caller's free text: not a label of its own.
        if not call.entry.provider_name:
            tool = "(not granted)"
        else:
            tool = call.name if call.known else f"{call.entry.provider_name}__(unlisted)"
        metrics.observe(tool, outcome, time.monotonic() - call.started, call.entry.error_type)


async def _record(gateway: ToolGateway, call: _Call) -> None:
    """Insert the call's record: complete for a refusal, `in_progress` before an upstream call."""
    try:
        await gateway.runtime.audit.insert(call.entry)
    except AuditWriteError:
        raise MCPError(types.INTERNAL_ERROR, "the audit record could not be committed") from None


async def _complete(gateway: ToolGateway, call: _Call) -> None:
    call.completing = True
    try:
        await gateway.runtime.audit.complete(call.entry)
    except AuditWriteError:
        # Its journal line stays: recovery completes the record when this worker ends.
        raise MCPError(types.INTERNAL_ERROR, "the audit record could not be committed") from None
    call.completed = True
    gateway.runtime.journal.end(call.entry.request_id)


async def _governed(gateway: ToolGateway, call: _Call) -> types.CallToolResult:
    identity = call.caller.identity
    found = _resolve(await gateway.accesses(call.caller), call.name)
    if found is None:
        call.finish(AuditStatus.REJECTED, error_type="unknown_tool", message="not granted")
        await _record(gateway, call)
        # The same answer as for a tool that does not exist.
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {call.name}")
    access, tool = found
    call.known = access.grant.tools is not None or gateway.lists(access.upstream, tool)
    call.entry.provider_name = access.upstream.name
    call.entry.upstream_model = tool
    refusal = access.grant.refusal(tool, call.arguments)
    if refusal is not None:
        call.finish(AuditStatus.REJECTED, error_type="argument_not_allowed", message=refusal)
        await _record(gateway, call)
        return _tool_error(f"Refused by the gateway: {refusal}.")
    limited = await _rate_limit(gateway, call, access, tool)
    if limited is not None:
        return limited
    arguments = await guard_arguments(identity, access.upstream, call.arguments)
    call.entry.guardrail_findings += arguments.findings
    call.entry.request_body = {
        "method": "tools/call",
        "name": call.name,
        "arguments": arguments.value,
    }
    call.entry.tool_calls = [{"name": call.name, "arguments": arguments.value}]
    if arguments.refusal:
        call.finish(AuditStatus.REJECTED, error_type=arguments.code, message=arguments.refusal)
        await _record(gateway, call)
        return _tool_error(arguments.refusal)
    if access.upstream.exchange is not None and not call.caller.subject_token:
        message = (
            f"{access.upstream.name} acts as the end user: send the end user's token in the "
            f"{SUBJECT_HEADER} header"
        )
        call.finish(AuditStatus.REJECTED, error_type="subject_token_missing", message=message)
        await _record(gateway, call)
        return _tool_error(f"Refused by the gateway: {message}.")
    call.price = access.upstream.price_of(tool)
    try:
        admission = await spend.reserve(
            gateway.runtime, call.caller.identity, call.entry, call.price
        )
    except GatewayError as error:
        call.finish(AuditStatus.REJECTED, error_type=error.code or "quota", message=error.message)
        call.entry.http_status = error.status
        await _record(gateway, call)
        raise spend.refusal(error) from None
    try:
        return await _forward(gateway, call, access, tool, arguments.value, admission)
    finally:
        # A spend is charged only with its committed record (and ledger row); a call whose
        # completion could not be written keeps its reservation until the lease lapses.
        if admission is not None and (call.completed or call.entry.cost_usd == 0):
            spend.settle(gateway.runtime, admission, call.entry.cost_usd)


async def _forward(
    gateway: ToolGateway,
    call: _Call,
    access: Access,
    tool: str,
    arguments: JSON,
    admission: Admission | None,
) -> types.CallToolResult:
    # How the gateway authenticates upstream (never the credential itself).
    call.entry.client_context["credential"] = access.upstream.credential_kind
    await _write_ahead(gateway, call, admission)
    # Nothing goes upstream before a committed record says the call is being made.
    try:
        await _record(gateway, call)
    except MCPError:
        gateway.runtime.journal.end(call.entry.request_id)  # never sent: nothing to recover
        raise
    try:
        return await _upstream_call(gateway, call, access, tool, arguments)
    except asyncio.CancelledError:
        if not call.completing:
            # Cut by the worker's shutdown (its grace ran out) or because the agent went away:
            # the SDK cancels the call either way, and neither says which. Recorded as
            # interrupted rather than left in progress; spawned, as this task is being
            # cancelled, and the runtime awaits its background work before its writer closes.
            call.finish(AuditStatus.INTERRUPTED, error_type="interrupted", message=INTERRUPTED)
            call.completing = True
            gateway.runtime.spawn(_complete_interrupted(gateway, call))
        raise
    except Exception as error:
        if call.completing or isinstance(error, MCPError):
            raise
        # An answer the gateway could not handle (a result its guards or the SDK's types choke
        # on, nested past what a record stores): the record is completed, never left in
        # progress, and a call the tool answered is charged.
        logger.exception("MCP tool call %s: the gateway could not handle it", call.name)
        kind = "protocol" if call.answered else "gateway_error"
        what = "read the answer of" if call.answered else "call"
        message = f"the gateway could not {what} {access.upstream.name} ({type(error).__name__})"
        call.entry.response_body = None
        call.finish(AuditStatus.UPSTREAM_ERROR, error_type=kind, message=message)
        await _complete(gateway, call)
        return _tool_error(f"The tool could not be used through the gateway: {message}.")


async def _write_ahead(gateway: ToolGateway, call: _Call, admission: Admission | None) -> None:
    """The call on the worker's write-ahead journal (audit/journal.py, ADR 0010), as a model
    call is: a worker killed outright (SIGKILL, out of memory) leaves its record to the next
    start's recovery, which completes it as `interrupted` and gives its reservation back."""
    release = None
    if admission is not None:
        release = admission.release(total_tokens=0, cost_usd=Decimal(0)).to_json()
    try:
        await gateway.runtime.journal.begin(call.entry, call.entry.request_body, release)
    except JournalError as error:
        logger.error("write-ahead journal failed (%s): MCP call %s not forwarded", error, call.name)
        message = "the gateway could not put the call on its write-ahead journal"
        call.finish(AuditStatus.REJECTED, error_type="audit_unavailable", message=message)
        await _record(gateway, call)
        raise MCPError(
            types.INTERNAL_ERROR, f"The call was not sent: {message}. Retry later."
        ) from None


async def _complete_interrupted(gateway: ToolGateway, call: _Call) -> None:
    try:
        await _complete(gateway, call)
    except MCPError:
        logger.error("MCP tool call %s: its interrupted record was not written", call.name)


async def _upstream_call(
    gateway: ToolGateway, call: _Call, access: Access, tool: str, arguments: JSON
) -> types.CallToolResult:
    upstream = access.upstream
    try:
        result = await gateway.request(
            upstream, call.caller, "tools/call", {"name": tool, "arguments": arguments}
        )
    except (UpstreamFailure, TokenFailure, TimeoutError) as failure:
        kind = failure.kind if isinstance(failure, UpstreamFailure | TokenFailure) else "timeout"
        message = str(failure) or f"{upstream.name} did not answer in time"
        call.entry.http_status = failure.code if isinstance(failure, UpstreamFailure) else None
        if kind == "too_large":  # it answered: the call ran and is charged
            call.entry.cost_usd = call.price
        call.finish(AuditStatus.UPSTREAM_ERROR, error_type=kind, message=message)
        await _complete(gateway, call)
        if isinstance(failure, TokenFailure) and failure.grant == CLIENT_CREDENTIALS:
            # The gateway's own credential is at fault, not the agent's call: a JSON-RPC error
            # that says so (and names no secret); the operator reads the cause in the record.
            raise MCPError(
                types.INTERNAL_ERROR,
                f"The gateway could not authenticate to {upstream.name}: {message}.",
                {"code": kind, "server": upstream.name},
            ) from None
        if kind == "too_large" or isinstance(failure, TokenFailure):
            return _tool_error(f"Refused by the gateway: {message}.")
        return _tool_error(f"The tool could not be reached through the gateway: {message}.")
    call.answered = True
    call.entry.cost_usd = call.price  # it answered: charged, whatever the gateway does with it
    return await _answer(gateway, call, access, result)


async def _answer(
    gateway: ToolGateway, call: _Call, access: Access, result: JSON
) -> types.CallToolResult:
    guarded = await guard_result(call.caller.identity, access.upstream, result)
    call.entry.guardrail_findings += guarded.findings
    if guarded.refusal:
        call.entry.response_body = None  # what was withheld is not kept either
        call.finish(AuditStatus.REJECTED, error_type=guarded.code, message=guarded.refusal)
        await _complete(gateway, call)
        return _tool_error(guarded.refusal)
    value = dict(guarded.value)
    value.pop("_meta", None)  # the upstream's own metadata stays with the gateway
    try:
        answer = types.CallToolResult.model_validate(value)
    except ValueError as exc:
        call.finish(AuditStatus.UPSTREAM_ERROR, error_type="protocol", message=str(exc)[:500])
        await _complete(gateway, call)
        return _tool_error("The tool's answer is not a valid MCP result.")
    if guarded.flagged:
        answer.content = [types.TextContent(type="text", text=guarded.flagged), *answer.content]
    call.entry.response_body = answer.model_dump(mode="json", by_alias=True, exclude_none=True)
    call.finish(AuditStatus.SUCCESS)
    call.entry.http_status = 200
    if answer.is_error:
        call.entry.error_type = "tool_error"
    await _complete(gateway, call)
    return answer


async def _rate_limit(
    gateway: ToolGateway, call: _Call, access: Access, tool: str
) -> types.CallToolResult | None:
    limit = access.grant.calls_per_minute
    if limit is None:
        return None
    identity = call.caller.identity
    check = WindowCheck(
        key=f"mcp:calls:{identity.quota_key_id}:{access.upstream.id}:{tool}",
        limit=limit,
        amount=1,
        label=f"{call.name} per key",
    )
    try:
        verdict = await gateway.runtime.quotas.store.admit([check], call.entry.request_id, 60)
    except Exception as error:  # the store is down or busy: a limit never fails open
        logger.warning("MCP rate limit unchecked, call refused: %s", error)
        message = "the rate limit could not be checked; try again shortly"
        call.finish(AuditStatus.REJECTED, error_type="limit_unavailable", message=message)
        await _record(gateway, call)
        return _tool_error(f"Refused by the gateway: {message}.")
    call.entry.quota = {"checks": [{"meter": "mcp_calls", "scope": check.label, "limit": limit}]}
    if verdict.allowed:
        return None
    retry = verdict.retry_after_s
    message = f"rate limit of {limit} calls per minute for {call.name} reached" + (
        f"; retry in {retry} s" if retry is not None else ""
    )
    call.finish(AuditStatus.REJECTED, error_type="rate_limited", message=message)
    call.entry.http_status = 429
    await _record(gateway, call)
    return _tool_error(f"Refused by the gateway: {message}.")
