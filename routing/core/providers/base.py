"""The one interface every provider adapter implements.

The gateway's internal form is OpenAI's chat format: an adapter takes an OpenAI-format payload
and gives back OpenAI-format bytes, translating if its provider speaks something else. Adapters
do no I/O except through the shared, injected `httpx.AsyncClient`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar, Protocol

import httpx
import orjson

from routing.core.egress_transport import egress_refusal
from routing.core.errors import UpstreamError, cause_for_status, parse_retry_after
from routing.core.sse import EventReader, event_data
from routing.core.stream_tap import StreamTap
from routing.core.types import JSON, Reply, Target


@lru_cache(maxsize=256)
def _parsed(url: str) -> httpx.URL:
    """A provider URL parsed once: httpx parses a string URL on every request (3.5% of a
    streamed request's CPU in the profile), a URL object not again."""
    return httpx.URL(url)


class StreamedAnswer(Protocol):
    """A provider's streamed answer once its headers are in: httpx's `Response`, or the same
    part of it read straight off the gateway's aiohttp pool (`egress_transport.OpenStream`)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def aiter_raw(self) -> AsyncIterator[bytes]: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class ChatStream:
    """An open upstream stream: OpenAI-format SSE events for the client, and what they said.

    `events` yields complete events (terminator included); it raises `UpstreamError` if the
    provider's stream breaks. The tap is complete once `events` is exhausted.
    """

    events: AsyncGenerator[bytes, None]
    tap: StreamTap = field(default_factory=StreamTap)
    upstream_status: int = 200
    # The events are the provider's own (a native Anthropic stream), not OpenAI chunks; the tap
    # still sees them in the internal form.
    native: bool = False
    # Whether the provider's next event is already received: what arrived together can be sent
    # to the client together (one write instead of one per event).
    received: Callable[[], bool] = field(default=lambda: False)


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """A provider's whole answer to a POST, before the adapter reads it."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive
    content: bytes


class ProviderAdapter(ABC):
    kind: ClassVar[str]

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @abstractmethod
    async def chat(
        self, target: Target, payload: JSON, *, client_headers: Mapping[str, str] | None = None
    ) -> Reply:
        """`client_headers`: the client's protocol headers an adapter may pass on (its choice)."""

    @abstractmethod
    async def chat_stream(
        self,
        target: Target,
        payload: JSON,
        *,
        client_wants_usage: bool,
        client_headers: Mapping[str, str] | None = None,
    ) -> ChatStream:
        """Open a stream; raises `UpstreamError` before the first byte if the provider refuses."""

    @abstractmethod
    async def embeddings(self, target: Target, payload: JSON) -> Reply: ...

    async def post_json(self, url: str, headers: dict[str, str], payload: JSON) -> RawAnswer:
        body = orjson.dumps(payload)
        try:
            # The gateway's own client reads the answer straight off its pool (routing/runtime.py,
            # UpstreamClient.post_read); any other httpx client (tests, tools) goes through httpx.
            post_read = getattr(self.client, "post_read", None)
            if post_read is not None:
                status, answer_headers, content = await post_read(url, headers, body)
                return RawAnswer(status, answer_headers, content)
            response = await self.client.post(url, content=body, headers=headers)
            return RawAnswer(response.status_code, response.headers, response.content)
        except httpx.TransportError as exc:
            raise transport_failure(exc) from exc

    async def open_stream(self, url: str, headers: dict[str, str], payload: JSON) -> StreamedAnswer:
        body = orjson.dumps(payload)
        try:
            # The gateway's own client opens it straight on its pool (routing/runtime.py,
            # UpstreamClient.open_stream); any other httpx client goes through httpx.
            opener = getattr(self.client, "open_stream", None)
            if opener is not None:
                response: StreamedAnswer = await opener(url, headers, body)
            else:
                request = self.client.build_request(
                    "POST", _parsed(url), content=body, headers=headers
                )
                response = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise transport_failure(exc) from exc
        if response.status_code >= 400:
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            raise self.error_from(response.status_code, response.headers, body)
        return response

    def error_from(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        """Turn a provider's error answer into an `UpstreamError` with an OpenAI-format body."""
        return UpstreamError(
            f"provider answered {status}",
            status=status,
            cause=cause_for_status(status),
            body=body,
            retry_after=parse_retry_after(headers.get("retry-after")),
        )


def transport_failure(exc: httpx.TransportError) -> UpstreamError:
    """No answer at all: a timeout, or a provider that could not be reached."""
    if refusal := egress_refusal(exc):
        # Never connected: the provider's address is one the egress policy forbids.
        return UpstreamError(
            f"the provider's address is not allowed by the egress policy: {refusal}",
            status=None,
            cause="egress_refused",
        )
    cause = exc.__cause__
    # The aiohttp transport reports a refused connection as a connect *timeout*; the OS error
    # underneath tells them apart (TimeoutError is itself an OSError, hence the second test).
    refused = isinstance(cause, OSError) and not isinstance(cause, TimeoutError)
    if isinstance(exc, httpx.TimeoutException) and not refused:
        return UpstreamError(
            f"timed out ({exc or type(exc).__name__})", status=None, cause="timeout"
        )
    return UpstreamError(
        f"unreachable ({exc or type(exc).__name__})", status=None, cause="connection"
    )


def stream_failure(exc: httpx.HTTPError) -> UpstreamError:
    """A stream that failed after its first event: the client already has part of the answer.

    A silence longer than the upstream read timeout is told apart from a broken connection, so
    the error event and the audit record say which of the two the provider did.
    """
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(
            "provider stream stalled: no data within the upstream read timeout",
            status=None,
            cause="stream_stalled",
        )
    return UpstreamError(
        f"provider stream broke: {exc or type(exc).__name__}", status=None, cause="stream_broken"
    )


class StreamTranslator(Protocol):
    """A provider's stream events in, OpenAI chat chunks out (routing/core/translate/)."""

    done: bool

    def feed(self, event: JSON) -> list[JSON]: ...


async def relay_translated(
    response: StreamedAnswer,
    reader: EventReader,
    translator: StreamTranslator,
    tap: StreamTap,
    *,
    client_wants_usage: bool,
    native: bool,
    failed: Callable[[JSON], UpstreamError | None],
    end_event: str,
    keep_comments: bool = False,
) -> AsyncGenerator[bytes, None]:
    """Relay a stream in a format other than OpenAI chat: every event goes through `translator`
    so the tap sees usage and text, and the client gets the translated chunks, or the provider's
    own bytes when it speaks the provider's format (`native`). `failed` turns an event into the
    provider's error; a stream that stops before `translator.done` is broken, named by
    `end_event`."""
    try:
        async for event in reader:
            data = event_data(event)
            if data is None:  # a comment or keep-alive: nothing to read
                if native and keep_comments:
                    yield event + b"\n\n"
                continue
            message = orjson.loads(data)
            if not isinstance(message, dict):
                raise UpstreamError(
                    "provider sent an unexpected stream event", status=None, cause="bad_response"
                )
            if (error := failed(message)) is not None:
                raise error
            for chunk in translator.feed(message):
                tap.feed(chunk)  # the tap always sees usage; the client only if it asked
                if not native and (chunk["choices"] or client_wants_usage):
                    yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            if native:
                yield event + b"\n\n"  # the provider's bytes (line endings normalized)
            if translator.done:
                break
    except httpx.HTTPError as exc:
        raise stream_failure(exc) from exc
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            "provider sent a malformed stream event", status=None, cause="bad_response"
        ) from exc
    finally:
        await response.aclose()
    if not translator.done:
        raise UpstreamError(
            f"provider stream ended before {end_event}", status=None, cause="stream_broken"
        )
    if not native:
        yield b"data: [DONE]\n\n"


def read_json(body: bytes) -> JSON:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            "provider sent a body that is not JSON", status=502, cause="bad_response"
        ) from exc
    if not isinstance(value, dict):
        raise UpstreamError("provider sent unexpected JSON", status=502, cause="bad_response")
    return value
