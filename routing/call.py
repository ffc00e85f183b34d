"""One proxied call: who made it, on whose behalf, and the audit record it builds as it goes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from audit.entries import AuditEntry
from audit.journal import INTERRUPTED_MESSAGE, JournalError
from audit.models import AuditStatus
from audit.observability.metrics import observe_call
from audit.storable import MAX_DEPTH, refused_in, too_deep
from audit.writer import AuditWriteError
from billing.cost import request_cost_usd
from routing.agent_identity import agent_of
from routing.caller import CONTEXT_HEADERS, END_USER_HEADER, FEATURE_HEADER, Caller
from routing.client_identity import claude_code_identity, codex_context, codex_end_user
from routing.core.errors import UpstreamError, public_reason
from routing.core.failover import try_in_order
from routing.core.strategy import RoutePlan
from routing.core.translate import untranslatable_fields
from routing.core.translate.responses_native import (
    hosted_tool_calls,
    hosted_tool_price_key,
    hosted_tool_type,
)
from routing.core.types import JSON, MAX_TOOL_RUNS, Attempt, Reply, Target, Usage
from routing.errors import GatewayError
from routing.guardrails import metrics as guardrail_metrics
from routing.runtime import GatewayRuntime
from routing.wire import AnthropicWire, OpenAIWire
from tenants.auth import KeyIdentity
from tenants.quotas import gate as quota_gate
from tenants.quotas.approvals import NO_PROVIDER_ANSWERED

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from routing.cache.proxy import CacheState
    from routing.guardrails.proxy import RequestGuard
    from routing.responses_native import NativeResponses
    from tenants.quotas.gate import Admitted

T = TypeVar("T")
# A stream's relay starts microseconds after its answer is ready; one that has not within this
# long never will (its client left in between), and is ended on its record.
UNRELAYED_STREAM_S = 30.0

_MAX_ATTRIBUTION_LENGTH = 200
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed


def parse_json_body(request: HttpRequest) -> JSON:
    try:
        body = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise GatewayError(
            413,
            f"Request body is larger than the gateway's limit of {limit} bytes.",
            code="request_too_large",
        ) from None
    if not body:
        raise GatewayError(400, "Request body is empty: send a JSON object.", code="invalid_json")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            400, f"Request body is not valid JSON ({exc}).", code="invalid_json"
        ) from None
    if not isinstance(raw, dict):
        raise GatewayError(400, "Request body must be a JSON object.", code="invalid_json")
    if too_deep(body, raw):
        # Its audit record could not be written: refused before any provider is called.
        raise GatewayError(
            400,
            f"Request body is nested deeper than {MAX_DEPTH} levels.",
            code="invalid_json",
        )
    return raw


def _identifier(value: str, param: str) -> str:
    """An end-user or feature name from the body: a key of budgets, the ledger and erasure, so it
    is stored as sent (at most a column's 200 characters, none that PostgreSQL refuses)."""
    if len(value) > _MAX_ATTRIBUTION_LENGTH:
        raise GatewayError(
            400,
            f"'{param}' is longer than {_MAX_ATTRIBUTION_LENGTH} characters.",
            code="invalid_value",
            param=param,
        )
    if refused_in(value):
        raise GatewayError(
            400,
            f"'{param}' contains a NUL character or a lone surrogate.",
            code="invalid_value",
            param=param,
        )
    return value


def _header(headers: dict[str, str], name: str) -> str:
    return checked_header(headers.get(name, ""), name)


def checked_header(value: str, name: str) -> str:
    """An attribution header's value, stripped; too long or with control characters: a 400."""
    value = value.strip()
    if len(value) > _MAX_ATTRIBUTION_LENGTH:
        raise GatewayError(
            400,
            f"Header '{name}' is longer than {_MAX_ATTRIBUTION_LENGTH} characters.",
            code="invalid_header",
        )
    if _CONTROL_CHARACTERS.search(value):
        # It goes into the audit record, whose text columns refuse NUL: refuse it here, as a
        # 400, rather than fail the record (a 503) after the caller was admitted.
        raise GatewayError(
            400, f"Header '{name}' contains control characters.", code="invalid_header"
        )
    return value


def audit_unavailable() -> GatewayError:
    return GatewayError(
        503,
        "The request was not served: its audit record could not be stored. Retry later.",
        type="server_error",
        code="audit_unavailable",
    )


class Call:
    """The pipeline's own state for one request, and the audit record it assembles from what
    each step returns (routing/pipeline.py). No step writes to it."""

    def __init__(
        self, runtime: GatewayRuntime, request: HttpRequest, identity: KeyIdentity, endpoint: str
    ) -> None:
        self.runtime = runtime
        self.request = request
        # The request's headers by lower-case name, once: every step looks several up, most of
        # them absent, and Django's case-insensitive mapping raises and catches a KeyError for
        # each miss (docs/perf/).
        self.headers = {name.lower(): value for name, value in request.headers.items()}
        self.identity = identity
        self.started = time.perf_counter()
        self.upstream_ms = 0.0
        self.attempts: list[Attempt] = []
        # Set once limits and budgets admitted the call; released after its record is written.
        self.admitted: Admitted | None = None
        self.quota_headers: dict[str, str] = {}  # what admission said: kept after release
        self.wire: OpenAIWire = (
            AnthropicWire(self._known_input_tokens) if endpoint == "messages" else OpenAIWire()
        )
        self.guard: RequestGuard | None = None  # set when a guardrail policy applies
        self.cache: CacheState | None = None  # set when the route caches answers
        # Why the route's deployments are tried in their order (pins, residency, category).
        self.routing_notes: list[str] = []
        self.task_category = ""
        # What the client sent that its deployment will not receive; never silently (headers
        # x-gateway-dropped-tools / -fields, and the record's `routing`).
        self.dropped_tools: list[str] = []
        self.dropped_fields: list[str] = []
        # An Anthropic Messages request: its body as sent (`source_body`), and the body to send
        # a deployment of that format as it is (`native_request`; None once a guardrail or a
        # registry prompt changed the request, so only the changed, translated form may go).
        self.source_format = ""
        self.source_body: JSON | None = None
        self.native_request: JSON | None = None
        # A Responses request (routing/responses_native.py): its forwarded hosted tools.
        self.native_responses: NativeResponses | None = None
        # The provider-run tools offered, each with the most runs it allows (`offer_tools`).
        self.tool_uses: tuple[tuple[str, int], ...] = ()
        self.journaled = False  # on the write-ahead journal (before the first provider call)
        # The client went away (its request was cancelled) while the call was forwarded: the
        # call goes on to its record (`run_to_record`), which says so.
        self.client_left = False
        # A stream answered but not relayed yet: how to end it if it never is, and the timer
        # that does at the latest.
        self._unrelayed: Callable[[], None] | None = None
        self._unrelayed_timer: asyncio.TimerHandle | None = None
        # A stream's start record, committed while its first deployment is asked (ADR 0014):
        # the insert in flight, the deployment it names, and whether it is in the database.
        self._start: asyncio.Task[None] | None = None
        self._start_target: Target | None = None
        self.start_recorded = False
        self.ended = False  # its outcome is on the record (or known lost): never written again
        # Found by the proxy's last resort (`Call.of`): a fault of the gateway's own is recorded.
        request.gateway_call = self  # type: ignore[attr-defined]
        self.entry = AuditEntry(
            request_id="req_" + uuid.uuid4().hex,
            tenant_id=identity.tenant_id,
            team_id=identity.team_id,
            api_key_id=identity.key_id,
            endpoint=endpoint,
            started_at=timezone.now(),
            status=AuditStatus.IN_PROGRESS,
        )

    @staticmethod
    def of(request: HttpRequest) -> Call | None:
        """The call a proxied request made, once it was authenticated."""
        call: Call | None = getattr(request, "gateway_call", None)
        return call

    @property
    def caller(self) -> Caller:
        return Caller(
            self.runtime,
            self.identity,
            self.headers,
            self.entry.request_id,
            self.entry.end_user,
            self.entry.client_context,
            self.entry.agent,
            self.tool_uses,
        )

    def offer_tools(self, source_body: JSON | None, native: NativeResponses | None) -> None:
        """Note the provider-run tools this request offers, each with the most runs it allows:
        an Anthropic server tool's `max_uses`, a Responses request's `max_tool_calls` (one cap
        for all its hosted tools); once each when the request sets no cap. Read by admission
        (the budget reservation counts their fees) and by the cache (it never answers them)."""
        uses: dict[str, int] = {}
        for tool in (source_body or {}).get("tools") or ():
            server = isinstance(tool, dict) and tool.get("type") not in (None, "custom")
            if server and isinstance(name := tool.get("name"), str):
                uses[name] = _cap(tool.get("max_uses"))
        if native is not None and native.forwarded:
            cap = native.body.get("max_tool_calls")
            for kind in native.forwarded:  # uncapped: each tool once (two kinds of search, two)
                key = hosted_tool_price_key(kind)
                uses[key] = _cap(cap) if cap is not None else uses.get(key, 0) + 1
        self.tool_uses = tuple(sorted(uses.items()))

    def note_findings(self, findings: Sequence[JSON]) -> None:
        """Guardrail findings, from any step, in the order they were made."""
        if findings:
            self.entry.guardrail_findings.extend(findings)
            guardrail_metrics.count(self.identity.tenant_slug, list(findings))

    def drop_tools(self, names: list[str]) -> None:
        if names:
            self.dropped_tools.extend(names)
            self.routing_notes.append("hosted tools dropped by the route: " + ", ".join(names))

    def native_body(self, target: Target) -> JSON | None:
        """The client's own body if `target` speaks the client's format and nothing in the
        gateway changed the request; else None, and what the translation drops is named."""
        if self.native_responses is not None:  # /v1/responses: never an Anthropic body
            native = self.native_request if target.kind == self.source_format else None
            if native is None:
                self.drop_tools(self.native_responses.lost(self.dropped_tools))
            return native
        if self.source_body is None:
            return None
        same_format = target.kind == self.source_format
        native = self.native_request if same_format else None
        self.dropped_fields = (
            []
            if native is not None
            else untranslatable_fields(self.source_body, round_trip=same_format)
        )
        if self.dropped_fields:
            self.entry.routing["dropped_fields"] = self.dropped_fields
        else:
            self.entry.routing.pop("dropped_fields", None)
        return native

    @property
    def request_id(self) -> str:
        return self.entry.request_id

    def _known_input_tokens(self) -> int:
        """The prompt's tokens as admission counted them (0 before it)."""
        return self.admitted.demand.prompt_tokens if self.admitted is not None else 0

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def attribute(self, raw: JSON, *, client_metadata: Any = None) -> None:
        """Record on whose behalf the call is made: headers win over the body's fields.

        A known client's own identity (Claude Code's `user`, Codex's `client_metadata`) is read
        into end user and session (routing/client_identity.py)."""
        metadata = raw.get("metadata") or {}
        user = str(raw.get("user") or "")
        context: dict[str, Any] = dict(metadata)
        if known := claude_code_identity(user):
            user = known.end_user  # the account, not the session: limits are per person
            context.update(known.context)
        context.update(codex_context(client_metadata))
        user = user or codex_end_user(client_metadata)
        self.entry.end_user = _header(self.headers, END_USER_HEADER) or _identifier(user, "user")
        self.entry.feature = _header(self.headers, FEATURE_HEADER) or _identifier(
            str(metadata.get("feature") or ""), "metadata.feature"
        )
        for header, key in CONTEXT_HEADERS.items():
            if value := _header(self.headers, header):
                context[key] = value
        self.entry.client_context = context
        self.entry.agent = agent_of(  # routing/agent_identity.py
            self.headers,
            metadata=metadata,
            context=context,
            client_metadata=client_metadata,
        )

    async def run_to_record(self, work: Coroutine[Any, Any, T]) -> T:
        """Forward the call and write its record even if the client goes away meanwhile (its
        request is then cancelled): a call its provider may have seen is recorded as soon as it
        ends, with what the provider answered and charged, and its journal line ended; not
        only when the worker stops, as `interrupted` and with nothing charged."""
        task = self.runtime.detach(work)
        task.add_done_callback(self._log_if_unheard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self.client_left = True
            if task.done():  # its answer came and nobody will send it
                self.end_unrelayed_stream()
            raise

    def _log_if_unheard(self, task: asyncio.Task[Any]) -> None:
        """A call's unexpected error is raised in its view; once its client left, logged here."""
        error = None if task.cancelled() else task.exception()
        if error is not None and self.client_left:
            logger.error("call %s failed after its client left", self.request_id, exc_info=error)

    def until_relayed(self, end: Callable[[], None]) -> None:
        """The stream is answered: `end` ends it on its record if its relay never starts."""
        self._unrelayed = end
        loop = asyncio.get_running_loop()
        self._unrelayed_timer = loop.call_later(UNRELAYED_STREAM_S, self.end_unrelayed_stream)

    def relayed(self) -> None:
        self._unrelayed = None
        if self._unrelayed_timer is not None:
            self._unrelayed_timer.cancel()
            self._unrelayed_timer = None

    def end_unrelayed_stream(self) -> None:
        end = self._unrelayed
        self.relayed()
        if end is not None:
            end()

    async def call_targets(
        self,
        plan: RoutePlan,
        payload: JSON,
        operation: Callable[[Any, Target, JSON], Awaitable[T]],
        *,
        per_attempt_s: float | None = None,
        record_start: bool = False,
    ) -> tuple[T, Target]:
        """The answer of the first of the route's deployments that gives one (routing/core/
        failover.py), after the call went on the write-ahead journal; raises the last
        UpstreamError when none does. Every attempt goes on the record.

        `record_start` (a stream): the call's in-progress record is inserted as the first
        deployment is asked, not after it answered; `commit_start` waits for it."""
        if not self.client_left:
            await self._write_ahead(payload)
        if self.client_left:  # gone before anything was sent: nothing is
            raise GatewayError(
                499,
                "The client went away before the call was sent.",
                code="client_disconnected",
            )

        async def attempt(target: Target) -> T:
            if record_start and self._start is None:
                self._begin_start_record(target, payload)
            adapter = self.runtime.adapter(target.kind)
            return await operation(adapter, target, {**payload, "model": target.upstream_model})

        async def room(target: Target) -> UpstreamError | None:
            return await quota_gate.provider_room(self.runtime.quotas, self.admitted, target)

        tried = await try_in_order(
            plan,
            attempt,
            health=self.runtime.health,
            end_user=self.entry.end_user,
            room=room,
            per_attempt_s=per_attempt_s,
            closing=lambda: self.runtime.closing,
            abandoned=lambda: self.client_left,
        )
        self.entry.routing = {
            "strategy": plan.strategy,
            "category": self.task_category or None,
            **({"dropped_tools": self.dropped_tools} if self.dropped_tools else {}),
            **(
                {"forwarded_tools": list(self.native_responses.forwarded)}
                if self.native_responses and self.native_responses.forwarded
                else {}
            ),
            **({"dropped_fields": self.dropped_fields} if self.dropped_fields else {}),
            **({"cache": self.cache.note()} if self.cache else {}),
            "reason": "; ".join([*self.routing_notes, tried.reason]),
        }
        self.attempts.extend(tried.attempts)
        self.upstream_ms += tried.upstream_ms
        if tried.error is not None:
            raise tried.error
        assert tried.target is not None
        self._answered_by(tried.target, payload)
        return tried.answer, tried.target  # type: ignore[return-value]

    async def _write_ahead(self, payload: JSON) -> None:
        """The call goes on disk before any byte goes to a provider (audit/journal.py): a crash
        from here on leaves an `interrupted` record, never none. Once per call."""
        if self.journaled:
            return
        release = None
        if self.admitted is not None:  # what recovery gives back if this worker dies
            admission = self.admitted.admission
            release = admission.release(total_tokens=0, cost_usd=Decimal(0)).to_json()
        # What is about to be sent, on the record even if no provider answers (the provider
        # that answers replaces it with exactly what it received, _answered_by).
        if self.entry.request_body is None:
            self.entry.request_body = payload
        try:
            await self.runtime.journal.begin(self.entry, payload, release)
        except JournalError as error:
            logger.error(
                "write-ahead journal failed (%s): %s not forwarded", error, self.request_id
            )
            raise GatewayError(
                503,
                "The request was not sent: the gateway could not record it. Retry later.",
                type="server_error",
                code="audit_unavailable",
            ) from None
        self.journaled = True

    def _answered_by(self, target: Target, payload: JSON) -> None:
        self.entry.deployment_name = target.deployment_name
        self.entry.provider_name = target.provider_name
        self.entry.upstream_model = target.upstream_model
        self.entry.request_body = self._sent_to(target, payload)

    def _sent_to(self, target: Target, payload: JSON) -> JSON:
        # The record keeps what the provider received: the client's own body when sent natively.
        sent = self.native_request if target.kind == self.source_format else None
        return {**(sent or payload), "model": target.upstream_model}

    def _begin_start_record(self, target: Target, payload: JSON) -> None:
        """Insert the stream's in-progress record, naming `target`, while `target` is asked: the
        journal line is already durable, and the first byte waits for both (ADR 0014). A copy:
        the call's own entry goes on changing meanwhile."""
        entry = self.entry
        start = dataclasses.replace(
            entry,
            deployment_name=target.deployment_name,
            provider_name=target.provider_name,
            upstream_model=target.upstream_model,
            request_body=self._sent_to(target, payload),
            routing=dict(entry.routing),
            attempts=[],
            guardrail_findings=list(entry.guardrail_findings),
            tool_calls=list(entry.tool_calls),
        )
        self._start_target = target
        # Written even if the request is cancelled meanwhile: the journal line says the call was
        # made, and recovery completes this record (docs/adr/0010).
        self._start = self.runtime.spawn(self.runtime.audit.insert(start))
        # Read even if nobody awaits it (the client went away): no "never retrieved" warning.
        self._start.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _await_start(self) -> None:
        start, self._start = self._start, None
        if start is None:
            return
        try:
            await asyncio.shield(start)
        except AuditWriteError:
            return  # not in the database: the next write inserts the record whole
        self.start_recorded = True

    async def commit_start(self, target: Target) -> GatewayError | None:
        """A stream's start record, durable before its first byte: the insert made while
        `target` was asked, or (after a failover, or if that insert failed) written now."""
        await self._await_start()
        named = self._start_target
        if (
            self.start_recorded
            and named is not None
            and named.deployment_id == target.deployment_id
        ):
            return None
        return await self.commit()

    def settle(
        self,
        *,
        usage: Usage,
        target: Target,
        response: JSON | None,
        status: str,
        http_status: int,
        withheld: bool = False,
        superseded: Sequence[tuple[Reply, Target]] = (),
    ) -> Decimal:
        """Charge the answer (and the `superseded` ones paid before it, each at its own
        deployment's prices) and put it on the record. `withheld`: a guardrail kept the answer
        from the client; its provider-run tools are charged, its text is not recorded."""
        hosted = hosted_tool_calls(response)  # provider-run tools: priced per call, recorded
        cost = request_cost_usd(usage, target, [hosted_tool_type(call) for call in hosted])
        for earlier, its_target in superseded:
            ran = [hosted_tool_type(call) for call in hosted_tool_calls(earlier.parsed)]
            cost += request_cost_usd(earlier.usage, its_target, ran)
            usage = usage.plus(earlier.usage)
        entry = self.entry
        entry.status = status
        entry.http_status = http_status
        entry.prompt_tokens = usage.prompt_tokens
        entry.completion_tokens = usage.completion_tokens
        entry.cached_tokens = usage.cached_tokens
        entry.cost_usd = cost
        entry.response_body = None if withheld else response
        if hosted and not withheld:
            entry.tool_calls = [*entry.tool_calls, *hosted]
        if response and not withheld:
            entry.upstream_model = response.get("model") or entry.upstream_model
        self.finish()
        return cost

    def finish(self) -> None:
        self.entry.attempts = [attempt.as_json() for attempt in self.attempts]
        self.entry.latency_ms = round(self.elapsed_ms(), 3)
        self.entry.completed_at = timezone.now()
        observe_call(self.entry, self.attempts)

    async def commit(self) -> GatewayError | None:
        """Write the record; if it cannot be written the client must not get the answer.

        A stream whose start record is in the database has it completed (or, still in
        progress, corrected) instead."""
        await self._await_start()
        if self.client_left and self.entry.status == AuditStatus.SUCCESS:
            self.entry.status = AuditStatus.FAILED
            self.entry.error_type = "client_disconnected"
            self.entry.error_message = (
                "The client went away before the answer was sent: the provider answered, and "
                "what it charged is on this record."
            )
        audit = self.runtime.audit
        try:
            await (audit.complete if self.start_recorded else audit.insert)(self.entry)
        except AuditWriteError:
            self.ended = True
            if self.journaled:
                self._record_later()
            else:
                # No record, so no ledger row: the budget counters are given back the whole
                # reservation, charging nothing the ledger does not hold.
                self.release(recorded=False)
            return audit_unavailable()
        if self.entry.status != AuditStatus.IN_PROGRESS:
            self.ended = True
            self.runtime.journal.end(self.request_id)
            self.release()
        return None

    async def fail_unexpectedly(self, error: Exception) -> HttpResponse:
        """A fault of the gateway's own (an exception no step expected): logged, answered 500 in
        the client's format with the request id, and the call recorded as failed, unless its
        record is written already. What a provider may have charged before it is not known."""
        logger.error("unexpected error in %s", self.request_id, exc_info=error)
        failure = GatewayError(
            500,
            "The gateway failed unexpectedly; the error was logged with this request id.",
            type="server_error",
            code="internal_error",
        )
        if self.ended:
            return self.error_response(failure)
        self.entry.status = AuditStatus.FAILED
        self.entry.http_status = 500
        self.entry.error_type = "internal_error"
        self.entry.error_message = f"The gateway failed unexpectedly ({type(error).__name__})."
        self.finish()
        return self.error_response(await self.commit() or failure)

    def release(self, *, recorded: bool = True) -> None:
        """After the record is written (or known lost): the reservation settled, once."""
        admitted, self.admitted = self.admitted, None
        if admitted is not None:
            quota_gate.settle(self.runtime, admitted, self.entry, recorded=recorded)

    def _record_later(self) -> None:
        """The provider saw this call but its record could not be written (the database is
        down): the client gets 503 and the writer writes the record, with what the provider
        answered and charged, once the database is back. Its reservation is held until then;
        if this worker dies first, the journal's recovery records it."""
        entry = dataclasses.replace(self.entry)
        was = f"{entry.status} {entry.http_status or ''}".strip()
        entry.status = AuditStatus.FAILED
        entry.http_status = 503
        entry.error_type = "audit_unavailable"
        entry.error_message = (
            f"Recorded late: the database was unreachable when this call ended ({was}), so the "
            "client was answered 503 audit_unavailable and the provider's answer withheld."
        )
        entry.completed_at = entry.completed_at or timezone.now()
        self.entry = entry

        def written() -> None:
            self.runtime.journal.end(self.request_id)
            self.release()

        audit = self.runtime.audit
        defer = audit.defer_completion if self.start_recorded else audit.defer
        self.runtime.spawn(defer(entry, on_written=written))

    async def reject(self, error: GatewayError) -> HttpResponse:
        """Refuse the call, with a record of the refusal."""
        self.entry.status = AuditStatus.REJECTED
        self.entry.http_status = error.status
        self.entry.error_type = error.code or error.type
        self.entry.error_message = error.message
        self.finish()
        failure = await self.commit()
        return self.error_response(failure or error)

    async def fail_upstream(self, error: UpstreamError) -> HttpResponse:
        status, body = client_facing_failure(error)
        status = self.wire.failure_status(status, error.status)
        self.entry.status = AuditStatus.UPSTREAM_ERROR
        self.entry.http_status = status
        self.entry.error_type = error.cause
        self.entry.error_message = error.message
        if self.runtime.closing:
            # Cut by the worker's shutdown (its grace ran out, the HTTP client closed under
            # it), not by the provider, which reads as a timeout or a disconnect.
            self.entry.status, self.entry.http_status = AuditStatus.INTERRUPTED, None
            self.entry.error_type, self.entry.error_message = "interrupted", INTERRUPTED_MESSAGE
        self.finish()
        approval = self.admitted.approval if self.admitted is not None else None
        if failure := await self.commit():
            return self.error_response(failure)
        if approval is not None and self.entry.status == AuditStatus.UPSTREAM_ERROR:
            # No provider answered, nothing was charged: the approval is good for the retry,
            # before the client is told (it may retry at once).
            await quota_gate.give_back_approval(
                approval,
                tenant_id=self.entry.tenant_id,
                request_id=self.request_id,
                reason=NO_PROVIDER_ANSWERED,
            )
        response = HttpResponse(
            self.wire.error_body(status, body), status=status, content_type="application/json"
        )
        if error.retry_after is not None:
            response["retry-after"] = str(int(error.retry_after + 0.999))
        for name, value in self.id_headers().items():
            response[name] = value
        return response

    def error_response(self, error: GatewayError) -> HttpResponse:
        """A gateway error in the client's wire format, with the request id."""
        return error.response(self.id_headers(), wire=self.wire)

    def id_headers(self) -> dict[str, str]:
        headers = {"x-request-id": self.request_id, **self.wire.headers(self.request_id)}
        if self.dropped_tools:
            headers["x-gateway-dropped-tools"] = ", ".join(self.dropped_tools)
        if self.dropped_fields:
            headers["x-gateway-dropped-fields"] = ", ".join(self.dropped_fields)
        if self.entry.prompt_version is not None:  # the registry version that was rendered
            headers["x-gateway-prompt"] = self.entry.prompt_name
            headers["x-gateway-prompt-version"] = str(self.entry.prompt_version)
            if self.entry.prompt_label:
                headers["x-gateway-prompt-label"] = self.entry.prompt_label
        return headers

    def route_headers(self, target: Target) -> dict[str, str]:
        return {
            **self.quota_headers,
            **self.id_headers(),
            **(self.cache.headers() if self.cache else {}),
            "x-gateway-route": self.entry.route_alias or target.deployment_name,
            "x-gateway-deployment": target.deployment_name,
            "x-gateway-provider": target.provider_name,
            "x-gateway-attempts": str(len(self.attempts)),
        }

    def result_headers(self, target: Target, cost: Decimal) -> dict[str, str]:
        """What the record says was charged (every answer paid for, a schema retry's too)."""
        return {
            **self.route_headers(target),
            "x-gateway-prompt-tokens": str(self.entry.prompt_tokens),
            "x-gateway-completion-tokens": str(self.entry.completion_tokens),
            "x-gateway-cost-usd": f"{cost:f}",
            "x-gateway-latency-ms": f"{self.elapsed_ms():.2f}",
            "x-gateway-upstream-ms": f"{self.upstream_ms:.2f}",
        }


def _cap(value: Any) -> int:
    """A request's cap on a tool's runs, as a reservation counts it: 1 when it sets none (or
    nonsense), never more than any answer could run (an absurd cap would overflow the counters)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return 1
    return min(value, MAX_TOOL_RUNS)


def client_facing_failure(error: UpstreamError) -> tuple[int, bytes]:
    """What the client sees when no deployment could answer: OpenAI's error format."""
    # A provider's 401/403 is about the gateway's provider key (providers echo its masked form):
    # passed on, it would tell the client its own, good key was refused.
    if (
        error.status is not None
        and error.status < 500
        and error.body
        and error.cause != "provider_auth"
    ):
        try:
            parsed = orjson.loads(error.body)
            if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
                return error.status, error.body  # the provider's own words, already OpenAI-shaped
        except orjson.JSONDecodeError:
            pass
    if error.status == 429:
        status = 429
    elif error.status in (503, 529):
        status = 503
    elif error.cause == "timeout":
        status = 504
    else:
        status = 502
    message = {
        "rate_limited": "Every deployment of this model is rate limited by its provider. Retry later.",
        "timeout": "The provider did not answer in time.",
        "connection": "The provider could not be reached.",
        "egress_refused": (
            "The provider's address is not allowed by the gateway's egress policy;"
            " an administrator must correct the provider's base URL or the policy."
        ),
        "provider_capacity": error.message,
        "provider_auth": (
            f"The provider refused the gateway's credentials ({public_reason(error)});"
            " an administrator must correct the provider's API key."
        ),
    }.get(error.cause, f"The provider failed to answer ({public_reason(error)}).")
    body = {
        "error": {"message": message, "type": "upstream_error", "param": None, "code": error.cause}
    }
    return status, orjson.dumps(body)
