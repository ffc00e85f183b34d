"""Splitting a byte stream into server-sent events, byte for byte."""

from __future__ import annotations

from collections.abc import AsyncIterator


async def iter_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Yield each complete SSE event (without its blank-line terminator) as received.

    Network chunks split events anywhere; events are re-cut on the blank line so each one can be
    inspected, and forwarded with exactly the bytes the provider sent.
    """
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            event, buffer = buffer[:end], buffer[end + 2 :]
            if event:
                yield event
    if buffer.strip():
        yield buffer.rstrip(b"\n")


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
