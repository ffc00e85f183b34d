"""The mock provider as a raw ASGI app: no framework, so it never limits a benchmark."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from mock_provider import anthropic_format, openai_format, responses_format
from mock_provider.behaviour import (
    ECHO_WORDS,
    BadRequest,
    Prompt,
    plan_reply,
    tool_call_id,
)
from mock_provider.config import MockConfig, apply_overrides
from mock_provider.control_api import handle_control
from mock_provider.controls import HEADER_CONTROLS, Controls, FailCounter, resolve_controls
from mock_provider.faults import (
    RESET,
    RESET_AFTER_START,
    STALL,
    STALL_AFTER_START,
    STATUS_FAULTS,
    FaultPicker,
    reset_now,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LOGGED_HEADERS = frozenset(
    {b"authorization", b"x-api-key", b"anthropic-version", b"anthropic-beta", b"content-type"}
)
JSON = b"application/json"
# Real providers label their streams with the charset; SDKs only look at the media type.
SSE = b"text/event-stream; charset=utf-8"
_CHAT = "/v1/chat/completions"
_MESSAGES = "/v1/messages"
_COUNT = "/v1/messages/count_tokens"
_EMBED = "/v1/embeddings"
_MODELS = "/v1/models"
_RESPONSES = "/v1/responses"
_POST_ROUTES = frozenset({_CHAT, _MESSAGES, _COUNT, _EMBED, _RESPONSES})


@dataclass(slots=True)
class Outcome:
    """How to answer one request."""

    status: int
    body: bytes = b""  # the payload; for an error, the message to wrap in the wire format
    headers: list[tuple[bytes, bytes]] | None = None
    events: list[bytes] | None = None  # set for a stream
    controls: Controls | None = None  # pacing and breaking of the stream, stalls
    fault: str | None = None  # the mixed fault this request meets (mock_provider.faults)


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    while message.get("more_body", False):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


async def send_bytes(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _sleep_ms(ms: int | None) -> None:
    if ms:
        await asyncio.sleep(ms / 1000)


def _retry_headers(retry_after: float | None) -> list[tuple[bytes, bytes]]:
    if retry_after is None:
        return []
    seconds = str(int(retry_after)) if retry_after == int(retry_after) else str(retry_after)
    return [
        (b"retry-after", seconds.encode()),
        (b"retry-after-ms", str(int(retry_after * 1000)).encode()),
    ]


def create_app(config: MockConfig | None = None) -> MockApp:
    """The ASGI app for `config` (defaults: no faults, no latency, no auth)."""
    return MockApp(config or MockConfig())


class MockApp:
    """ASGI callable; its attributes are the state tests and control endpoints inspect."""

    def __init__(self, config: MockConfig) -> None:
        self.startup_config = config
        self.runtime_overrides: dict[str, Any] = {}
        self.config = config  # startup config with the runtime overrides applied
        self.requests: deque[dict[str, Any]] = deque(maxlen=config.log_limit)
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.fail_counter = FailCounter()
        self.fault_picker = FaultPicker()
        self.by_fault: Counter[str] = Counter()
        self.models_body = openai_format.models_body(config.models, int(time.time()))

    def set_runtime(self, overrides: Mapping[str, Any]) -> MockConfig:
        """Replace (not merge) the runtime overrides; `{}` returns to the startup config."""
        self.config = apply_overrides(self.startup_config, overrides)
        self.runtime_overrides = dict(overrides)
        # A new fail_rate must start its pattern from the beginning to stay predictable.
        self.fail_counter = FailCounter()
        self.fault_picker = FaultPicker()
        return self.config

    def reset(self) -> None:
        self.set_runtime({})
        self.requests.clear()
        self.by_path.clear()
        self.by_status.clear()
        self.by_fault.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith("/_mock/") or path == "/health":
            await handle_control(self, scope, await _read_body(receive), send)
            return
        logged: dict[str, str] = {}
        controls: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in LOGGED_HEADERS:
                logged[name.decode("latin-1")] = value.decode("latin-1")
            elif name in HEADER_CONTROLS:
                controls[HEADER_CONTROLS[name]] = value.decode("latin-1")
        raw = await _read_body(receive)
        entry: dict[str, Any] = {
            "method": scope["method"],
            "path": path,
            "received_at": time.time(),
            "headers": logged,
            "body": None,
        }
        self.requests.append(entry)
        self.by_path[path] += 1
        outcome = await self._dispatch(scope["method"], path, raw, entry, controls)
        fault = outcome.fault
        if fault is not None:
            entry["fault"] = fault
            self.by_fault[fault] += 1
        if fault == RESET:
            entry["status"] = None  # no HTTP answer at all
            await reset_now(send)
            return
        entry["status"] = outcome.status
        self.by_status[outcome.status] += 1
        if fault == STALL and outcome.controls is not None:
            await _sleep_ms(outcome.controls.stall_ms)
        if outcome.events is not None and outcome.controls is not None:
            await self._stream(send, outcome.events, outcome.controls, fault)
            return
        body = outcome.body
        if outcome.status >= 400:
            fmt = anthropic_format if path.startswith(_MESSAGES) else openai_format
            body = fmt.error_body(outcome.status, body.decode())
        if fault in (RESET_AFTER_START, STALL_AFTER_START) and outcome.controls is not None:
            await self._start_then_fail(send, outcome, body, outcome.controls, fault)
            return
        await send_bytes(send, outcome.status, body, outcome.headers)

    async def _start_then_fail(
        self, send: Send, outcome: Outcome, body: bytes, ctl: Controls, fault: str
    ) -> None:
        """A whole answer whose status line and headers go out, then a reset or a stall."""
        headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
        if fault == RESET_AFTER_START:
            await reset_now(send)
            return
        await _sleep_ms(ctl.stall_ms)
        await send({"type": "http.response.body", "body": body})

    async def _dispatch(
        self, method: str, path: str, raw: bytes, entry: dict[str, Any], headers: dict[str, str]
    ) -> Outcome:
        if path == _MODELS or path.startswith(_MODELS + "/"):
            if method != "GET":
                return Outcome(405, b"Method not allowed")
            if not self._authorized(entry["headers"]):
                return Outcome(401, b"Incorrect API key provided.")
            if path == _MODELS:
                return Outcome(200, self.models_body)
            model = path[len(_MODELS) + 1 :]
            if model not in self.config.models:
                return Outcome(404, f"The model '{model}' does not exist".encode())
            card = {"id": model, "object": "model", "created": 0, "owned_by": "mock"}
            return Outcome(200, orjson.dumps(card))
        if path not in _POST_ROUTES:
            return Outcome(404, f"Unknown request URL: {method} {path}".encode())
        if method != "POST":
            return Outcome(405, b"Method not allowed")
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return Outcome(400, b"We could not parse the JSON body of your request.")
        entry["body"] = body
        if not isinstance(body, dict):
            return Outcome(400, b"The request body must be a JSON object.")
        if not self._authorized(entry["headers"]):
            anthropic = path.startswith(_MESSAGES)
            return Outcome(
                401, b"invalid x-api-key" if anthropic else b"Incorrect API key provided."
            )
        try:
            return await self._serve(path, raw, body, headers)
        except BadRequest as exc:
            return Outcome(400, str(exc).encode())

    def _authorized(self, headers: dict[str, str]) -> bool:
        key = self.config.required_api_key
        if key is None:
            return True
        return headers.get("x-api-key") == key or headers.get("authorization") == "Bearer " + key

    async def _serve(
        self, path: str, raw: bytes, body: dict[str, Any], headers: dict[str, str]
    ) -> Outcome:
        prompt: Prompt | None = None
        if path == _CHAT:
            prompt = openai_format.parse_chat(body)
        elif path == _MESSAGES:
            prompt = anthropic_format.parse_messages(body)
        elif path == _COUNT:
            prompt = anthropic_format.parse_messages(body, counting_only=True)
        elif path == _RESPONSES:
            prompt = responses_format.parse_responses(body)
        if prompt is not None:
            texts, user_text = prompt.texts, prompt.last_user_text
        else:
            texts, _ = openai_format.embedding_inputs(body)
            user_text = texts[-1]
        ctl = resolve_controls(self.config, headers, user_text)
        marker = ctl.fail_marker
        if marker and any(marker in text for text in texts):
            await _sleep_ms(ctl.latency_ms)
            return Outcome(500, b"The server had an error processing your request (fail marker).")
        status = ctl.status
        if (
            status is not None
            and status >= 400
            and (ctl.forced or self.fail_counter.should_fail(ctl.fail_rate))
        ):
            await _sleep_ms(ctl.latency_ms)
            message = f"Injected mock error {status}".encode()
            return Outcome(status, message, _retry_headers(ctl.retry_after))
        fault = ctl.fault
        if fault is None and ctl.fault_rate > 0:
            fault = self.fault_picker.next(ctl.fault_rate, ctl.faults)
        if fault in STATUS_FAULTS:
            await _sleep_ms(ctl.latency_ms)
            message = f"Injected mock fault {fault}".encode()
            retry = _retry_headers(ctl.retry_after) if fault == "429" else []
            return Outcome(STATUS_FAULTS[fault], message, retry, controls=ctl, fault=fault)
        outcome = await self._answer(path, raw, body, prompt, ctl)
        outcome.controls, outcome.fault = ctl, fault
        return outcome

    async def _answer(
        self, path: str, raw: bytes, body: dict[str, Any], prompt: Prompt | None, ctl: Controls
    ) -> Outcome:
        if path == _EMBED:
            out = openai_format.embeddings_body(body, self.config.embedding_dimensions)
        elif path == _COUNT:
            assert prompt is not None
            out = anthropic_format.count_tokens_body(prompt)
        else:
            assert prompt is not None
            model: str = body["model"]
            echo = self.config.echo_words.get(model, ECHO_WORDS)
            reply = plan_reply(prompt, echo, self.config.tool_script)
            stream = body.get("stream") is True
            if path == _CHAT:
                chat_id, call_id = "chatcmpl-" + secrets.token_hex(12), tool_call_id("call_", raw)
                if stream:
                    options = body.get("stream_options")
                    usage = isinstance(options, dict) and options.get("include_usage") is True
                    events = openai_format.chat_stream(reply, model, chat_id, call_id, usage)
                    return Outcome(200, events=events, controls=ctl)
                out = openai_format.chat_completion(reply, model, chat_id, call_id)
            elif path == _RESPONSES:
                response_id, call_id = "resp_" + secrets.token_hex(24), tool_call_id("call_", raw)
                if stream:
                    events = responses_format.response_stream(
                        body, prompt, reply, response_id, call_id
                    )
                    return Outcome(200, events=events, controls=ctl)
                out = responses_format.response_body(body, prompt, reply, response_id, call_id)
            else:
                msg_id, tool_id = "msg_" + secrets.token_hex(12), tool_call_id("toolu_", raw)
                if stream:
                    events = anthropic_format.message_stream(reply, model, msg_id, tool_id, prompt)
                    return Outcome(200, events=events, controls=ctl)
                out = anthropic_format.message_body(reply, model, msg_id, tool_id, prompt)
        await _sleep_ms(ctl.latency_ms)
        return Outcome(200, out)

    async def _stream(
        self, send: Send, events: list[bytes], ctl: Controls, fault: str | None = None
    ) -> None:
        headers = [(b"content-type", SSE), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await _sleep_ms(ctl.ttft_ms if ctl.ttft_ms is not None else ctl.latency_ms)
        limit = ctl.break_after_chunks
        broken = limit is not None and limit < len(events)
        if broken:
            events = events[:limit]
        if fault in (RESET_AFTER_START, STALL_AFTER_START) and events:
            # The first event reaches the client: past this point a proxy has sent bytes.
            await send({"type": "http.response.body", "body": events[0], "more_body": True})
            if fault == RESET_AFTER_START:
                await reset_now(send)
                return
            await _sleep_ms(ctl.stall_ms)
            events = events[1:]
        if not ctl.chunk_delay_ms:
            # Without pacing, one write carries the whole stream: same bytes, far fewer syscalls.
            await send(
                {"type": "http.response.body", "body": b"".join(events), "more_body": broken}
            )
        else:
            for index, event in enumerate(events):
                if index:
                    await _sleep_ms(ctl.chunk_delay_ms)
                await send({"type": "http.response.body", "body": event, "more_body": True})
            if not broken:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        # When broken we return with the body unfinished: the server then drops the
        # connection without the terminating chunk, so clients see a truncated stream.
