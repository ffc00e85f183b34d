import pytest

from routing.core.sse import EventReader, event_data, event_name


async def _chunks(*parts: bytes):
    for part in parts:
        yield part


async def _events(*parts: bytes) -> list[bytes]:
    return [event async for event in EventReader(_chunks(*parts))]


async def test_events_split_across_network_chunks_are_rejoined_byte_for_byte():
    events = await _events(b'data: {"a": ', b'1}\n\ndata: {"b"', b": 2}\n\n", b"data: [DONE]\n\n")
    assert events == [b'data: {"a": 1}', b'data: {"b": 2}', b"data: [DONE]"]


async def test_crlf_line_endings_and_a_trailing_event_without_terminator_are_handled():
    assert await _events(b"event: ping\r\ndata: {}\r\n\r\ndata: last") == [
        b"event: ping\ndata: {}",
        b"data: last",
    ]


@pytest.mark.parametrize(
    ("event", "data"),
    [
        (b"data: {}", b"{}"),
        (b"data:{}", b"{}"),
        (b": keep-alive", None),
        (b"data: a\ndata: b", b"a\nb"),
    ],
)
def test_event_data_reads_the_payload(event, data):
    assert event_data(event) == data


def test_event_name_reads_anthropic_style_event_lines():
    assert event_name(b"event: message_start\ndata: {}") == "message_start"
    assert event_name(b"data: {}") is None


async def test_the_reader_knows_whether_the_next_event_is_already_here() -> None:
    reader = EventReader(_chunks(b"data: 1\n\ndata: 2\n\ndata: 3", b"\n\n"))
    seen = []
    async for event in reader:
        seen.append((event, reader.received()))
    # 1 and 2 came in one read; 3 needed the next one.
    assert seen == [(b"data: 1", True), (b"data: 2", False), (b"data: 3", False)]
