"""OpenAI-compatible providers (OpenAI, Azure-style proxies, vLLM, Ollama, …): a pass-through.

Answers go back to the client byte for byte: only the stream is re-cut into events, to read
usage and to drop the usage chunk the gateway asked for on the client's behalf.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import httpx
import orjson

from routing.core.errors import UpstreamError
from routing.core.providers.base import (
    ChatStream,
    ProviderAdapter,
    StreamedAnswer,
    read_json,
    stream_failure,
)
from routing.core.sse import EventReader, event_data
from routing.core.stream_tap import StreamTap
from routing.core.types import JSON, Reply, Target, Usage


class OpenAIAdapter(ProviderAdapter):
    kind = "openai"

    def _headers(self, target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        return headers

    def _url(self, target: Target, path: str) -> str:
        return target.base_url.rstrip("/") + path

    # `client_headers` are never sent on: they are another wire format's (Anthropic's) headers.
    async def chat(
        self, target: Target, payload: JSON, *, client_headers: Mapping[str, str] | None = None
    ) -> Reply:
        response = await self.post_json(
            self._url(target, "/chat/completions"), self._headers(target), payload
        )
        if response.status_code >= 400:
            raise self.error_from(response.status_code, response.headers, response.content)
        parsed = read_json(response.content)
        return Reply(
            status=response.status_code,
            body=response.content,
            parsed=parsed,
            usage=Usage.from_openai(parsed.get("usage")),
        )

    async def chat_stream(
        self,
        target: Target,
        payload: JSON,
        *,
        client_wants_usage: bool,
        client_headers: Mapping[str, str] | None = None,
    ) -> ChatStream:
        # Always ask for usage: a stream is charged from what the provider reports.
        payload = {
            **payload,
            "stream_options": {**(payload.get("stream_options") or {}), "include_usage": True},
        }
        response = await self.open_stream(
            self._url(target, "/chat/completions"), self._headers(target), payload
        )
        tap = StreamTap()
        reader = EventReader(response.aiter_raw())
        return ChatStream(
            events=self._relay(response, reader, tap, client_wants_usage),
            tap=tap,
            upstream_status=response.status_code,
            received=reader.received,
        )

    async def _relay(
        self,
        response: StreamedAnswer,
        reader: EventReader,
        tap: StreamTap,
        client_wants_usage: bool,
    ) -> AsyncGenerator[bytes, None]:
        finished = False
        try:
            async for event in reader:
                data = event_data(event)
                if data is None:
                    yield event + b"\n\n"
                    continue
                if data == b"[DONE]":
                    finished = True
                    yield event + b"\n\n"
                    continue
                chunk = orjson.loads(data)
                if "error" in chunk:
                    raise UpstreamError(
                        "provider reported an error mid-stream",
                        status=None,
                        cause="stream_error",
                        body=orjson.dumps(chunk),
                    )
                tap.feed(chunk)
                if not client_wants_usage and not chunk.get("choices") and chunk.get("usage"):
                    # The usage-only chunk the client did not ask for. Other chunks keep their
                    # `"usage": null` so their bytes reach the client unchanged.
                    continue
                yield event + b"\n\n"
        except httpx.HTTPError as exc:
            raise stream_failure(exc) from exc
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                "provider sent a malformed stream event", status=None, cause="bad_response"
            ) from exc
        finally:
            await response.aclose()
        if not finished:
            raise UpstreamError(
                "provider stream ended before [DONE]", status=None, cause="stream_broken"
            )

    async def embeddings(self, target: Target, payload: JSON) -> Reply:
        response = await self.post_json(
            self._url(target, "/embeddings"), self._headers(target), payload
        )
        if response.status_code >= 400:
            raise self.error_from(response.status_code, response.headers, response.content)
        parsed = read_json(response.content)
        return Reply(
            status=response.status_code,
            body=response.content,
            parsed=parsed,
            usage=Usage.from_openai(parsed.get("usage")),
        )
