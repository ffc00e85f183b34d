"""Splitting a byte stream into server-sent events, byte for byte."""

from __future__ import annotations

from collections.abc import AsyncIterator


class EventReader:
    """Each complete SSE event of a byte stream (without its blank-line terminator), as received.

    Network chunks split events anywhere; events are re-cut on the blank line so each one can be
    inspected, and forwarded with exactly the bytes the provider sent. `received()` says whether
    the next event is already here, so a relay can send together what arrived together.
    """

    __slots__ = ("_buffer", "_chunks")

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def received(self) -> bool:
        return b"\n\n" in self._buffer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            buffer = self._buffer + chunk
            if b"\r" in buffer:
                buffer = buffer.replace(b"\r\n", b"\n")
            while (end := buffer.find(b"\n\n")) >= 0:
                event, buffer = buffer[:end], buffer[end + 2 :]
                if event:
                    self._buffer = buffer
                    yield event
            self._buffer = buffer
        if self._buffer.strip():
            event, self._buffer = self._buffer.rstrip(b"\n"), b""
            yield event


def event_data(event: bytes) -> bytes | None:
    """The `data:` payload of an event (joined if multi-line), or None for comments/pings."""
    parts = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    if not parts:
        return None
    return b"\n".join(parts)


def event_name(event: bytes) -> str | None:
    for line in event.split(b"\n"):
        if line.startswith(b"event:"):
            return line[6:].strip().decode()
    return None
