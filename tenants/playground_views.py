"""The playground: chat through the gateway's own /v1 with a pasted key.

Multi-turn (the page carries the turns), a system prompt and parameters, one model or two side by
side. Two ways in, one template (`console/playground.html`, its `answer` partial):

- `playground`: the form's post (htmx, or a plain page without JavaScript); the answer comes
  whole, streamed or not between the console and the gateway.
- `playground_stream`: what the page's script (static `console/playground.js`) posts when
  "Stream the answer" is ticked. It answers newline-delimited JSON events as the gateway's stream
  arrives, so the browser shows the text token by token:
  `begin` (the answer area with the new turn and an empty answer), `request` (a side's request id
  and its record), `delta` (a side's next text) and `done` (the answer area as the plain post
  would render it: the record's tokens and cost, or a side's error). When the browser stops
  reading (Stop), the server cancels the sides' requests, so the gateway sees its client leave
  and records the stream as ended by the client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse

from audit import selectors as audit_selectors
from gateway_site.console.access import console_context, console_view
from routing import selectors as routing_selectors
from tenants import selectors
from tenants.forms import PlaygroundForm
from tenants.models import Role
from tenants.snippets import gateway_url

DEV = (Role.DEVELOPER, Role.TENANT_ADMIN)
NDJSON = "application/x-ndjson"
# A side's stream event handed to the page: {"type": ..., "side": n, ...}.
Emit = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class Reply:
    """One side's answer in the playground, with what it cost and where its record is."""

    model: str
    answer: str = ""
    error: str = ""
    request_id: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    streamed: bool = False
    history: list[dict[str, str]] = field(default_factory=list)
    # While the browser reads the answer as it comes: the turns before this one, which the page
    # keeps if the user stops before any text arrived.
    streaming: bool = False
    previous: list[dict[str, str]] = field(default_factory=list)

    @property
    def history_json(self) -> str:
        return json.dumps(self.previous if self.streaming else self.history)

    @property
    def turns_json(self) -> str:
        """The conversation up to the question being answered (the page adds what arrived)."""
        return json.dumps(self.history[:-1] if self.streaming else self.history)


def _error_text(status: int, payload: Any, text: str) -> str:
    message = (
        ((payload or {}).get("error") or {}).get("message") if isinstance(payload, dict) else ""
    )
    return f"{status}: {message or text[:500]}"


def _turns(data: dict[str, Any], history: list[dict[str, str]]) -> list[dict[str, str]]:
    return [*history, {"role": "user", "content": data["message"]}]


def _chat_body(data: dict[str, Any], model: str, turns: list[dict[str, str]]) -> dict[str, Any]:
    messages = [{"role": "system", "content": data["system"]}] if data.get("system") else []
    body: dict[str, Any] = {"model": model, "messages": messages + turns}
    if data.get("temperature") is not None:
        body["temperature"] = float(data["temperature"])
    if data.get("max_tokens"):
        body["max_tokens"] = data["max_tokens"]
    if data.get("stream"):
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


async def _ask_gateway(
    request: HttpRequest,
    data: dict[str, Any],
    model: str,
    history: list[dict[str, str]],
    emit: Emit | None = None,
) -> Reply:
    """One chat request through the gateway's own /v1 with the pasted key (streamed or not);
    `emit` hears the request id as soon as the gateway answers and each piece of text."""
    reply = Reply(model=model, streamed=bool(data.get("stream")))
    turns = _turns(data, history)
    url = gateway_url(request) + "/v1/chat/completions"
    headers = {"authorization": f"Bearer {data['api_key']}", "x-gateway-feature": "playground"}
    began = time.perf_counter()
    try:
        async with (
            httpx.AsyncClient(timeout=60) as client,
            client.stream(
                "POST", url, json=_chat_body(data, model, turns), headers=headers
            ) as response,
        ):
            reply.request_id = response.headers.get("x-request-id", "")
            if emit is not None and reply.request_id:
                emit({"type": "request", "request_id": reply.request_id})
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = None
                reply.error = _error_text(response.status_code, payload, text)
                return reply
            if reply.streamed:
                await _read_stream(response, reply, began, emit)
            else:
                payload = json.loads(await response.aread())
                reply.answer = str(payload["choices"][0]["message"].get("content") or "")
                usage = payload.get("usage") or {}
                reply.prompt_tokens = usage.get("prompt_tokens")
                reply.completion_tokens = usage.get("completion_tokens")
                cost = response.headers.get("x-gateway-cost-usd")
                reply.cost_usd = Decimal(cost) if cost else None
    except httpx.HTTPError as exc:
        reply.error = f"The gateway could not be reached at {url}: {exc}"
        return reply
    reply.latency_ms = round((time.perf_counter() - began) * 1000, 1)
    reply.history = [*turns, {"role": "assistant", "content": reply.answer}]
    return reply


async def _read_stream(
    response: httpx.Response, reply: Reply, began: float, emit: Emit | None
) -> None:
    """Server-sent events: the text as it arrives, when the first token came, the usage."""
    parts: list[str] = []
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            continue
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                if reply.ttft_ms is None:
                    reply.ttft_ms = round((time.perf_counter() - began) * 1000, 1)
                parts.append(text)
                if emit is not None:
                    emit({"type": "delta", "text": text})
        usage = chunk.get("usage") or {}
        if usage:
            reply.prompt_tokens = usage.get("prompt_tokens")
            reply.completion_tokens = usage.get("completion_tokens")
    reply.answer = "".join(parts)


def _with_record(request: HttpRequest, reply: Reply) -> Reply:
    """The record's own figures (cost of a stream comes only from it), when the key is the
    user's: the request id then links to the record."""
    if not reply.request_id:
        return reply
    ctx = console_context(request)
    keys = selectors.key_ids_of_owner(tenant=ctx.tenant, user=request.user)
    record = audit_selectors.own_request_get(
        tenant=ctx.tenant, key_ids=keys, request_id=reply.request_id
    )
    if record is None:
        return reply
    reply.cost_usd = record.cost_usd
    reply.prompt_tokens, reply.completion_tokens = record.prompt_tokens, record.completion_tokens
    if record.latency_ms is not None:
        reply.latency_ms = round(record.latency_ms, 1)
    if record.ttft_ms is not None:
        reply.ttft_ms = round(record.ttft_ms, 1)
    return reply


async def _form(request: HttpRequest) -> PlaygroundForm:
    ctx = console_context(request)
    models = await sync_to_async(routing_selectors.models_available)(tenant=ctx.tenant)
    return PlaygroundForm(request.POST if request.method == "POST" else None, models=models)


def _form_error(form: PlaygroundForm) -> str:
    required = ("api_key", "model", "message")
    if any(name in form.errors for name in required):
        return "Fill in your key, a model and a message."
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _sides(data: dict[str, Any]) -> list[tuple[str, list[dict[str, str]]]]:
    sides = [(data["model"], data["history_a"])]
    if data.get("compare_model"):
        sides.append((data["compare_model"], data["history_b"]))
    return sides


def _context(form: PlaygroundForm, replies: list[Reply], error: str = "") -> dict[str, Any]:
    first = replies[0] if replies else None
    return {
        "form": form,
        "replies": replies,
        "answer": first.answer if first else "",
        "error": error,  # the form's; each side shows its own upstream error
    }


@console_view(*DEV)
async def playground(request: HttpRequest) -> HttpResponse:
    """Multi-turn, streamed or not, a system prompt and parameters, one model or two side by
    side; each answer shows its tokens, cost, latency and request id (linked to its record)."""
    form = await _form(request)
    replies: list[Reply] = []
    error = ""
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            answered = await asyncio.gather(
                *(_ask_gateway(request, data, model, history) for model, history in _sides(data))
            )
            replies = [await sync_to_async(_with_record)(request, r) for r in answered]
        else:
            error = _form_error(form)
    template = "console/playground.html"
    if request.htmx:  # type: ignore[attr-defined]
        template += "#answer"
    response: HttpResponse = await sync_to_async(render)(
        request, template, _context(form, replies, error)
    )
    return response


def _event(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode() + b"\n"


async def _answer_html(request: HttpRequest, context: dict[str, Any]) -> str:
    html: str = await sync_to_async(render_to_string)(
        "console/playground.html#answer", context, request=request
    )
    return html


async def _stream_events(
    request: HttpRequest, form: PlaygroundForm, data: dict[str, Any]
) -> AsyncIterator[bytes]:
    sides = _sides(data)
    begun = [
        Reply(
            model=model,
            streamed=True,
            streaming=True,
            previous=history,
            history=[*_turns(data, history), {"role": "assistant", "content": ""}],
        )
        for model, history in sides
    ]
    slug = console_context(request).tenant.slug
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def emitter(side: int) -> Emit:
        def emit(event: dict[str, Any]) -> None:
            if event["type"] == "request":
                event["url"] = reverse(
                    "console:my_request",
                    kwargs={"tenant_slug": slug, "request_id": event["request_id"]},
                )
            queue.put_nowait({**event, "side": side})

        return emit

    tasks = [
        asyncio.create_task(_ask_gateway(request, data, model, history, emitter(i)))
        for i, (model, history) in enumerate(sides)
    ]

    async def close_when_all_done() -> None:
        await asyncio.wait(tasks)
        queue.put_nowait(None)

    closer = asyncio.create_task(close_when_all_done())
    try:
        yield _event({"type": "begin", "html": await _answer_html(request, _context(form, begun))})
        while (event := await queue.get()) is not None:
            yield _event(event)
        replies = []
        for task, (model, _) in zip(tasks, sides, strict=True):
            try:
                answered = task.result()
            except Exception as exc:  # a bug of ours: said on the page, not a broken stream
                answered = Reply(model=model, error=f"The playground failed: {exc}")
            replies.append(await sync_to_async(_with_record)(request, answered))
        yield _event({"type": "done", "html": await _answer_html(request, _context(form, replies))})
    finally:
        # Stopped (the browser went away) or finished: a side still streaming is cancelled,
        # which closes its connection, so the gateway ends the stream and records it.
        for running in [*tasks, closer]:
            running.cancel()


@console_view(*DEV)
async def playground_stream(request: HttpRequest) -> HttpResponseBase:
    """The playground's answer as it arrives, for the page's script (see the module's text)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = await _form(request)
    data = {**form.cleaned_data, "stream": True} if form.is_valid() else None
    if data is None:
        html = await _answer_html(request, _context(form, [], _form_error(form)))
        return HttpResponse(_event({"type": "done", "html": html}), content_type=NDJSON)
    response = StreamingHttpResponse(_stream_events(request, form, data), content_type=NDJSON)
    response["cache-control"] = "no-store"
    response["x-accel-buffering"] = "no"
    return response
