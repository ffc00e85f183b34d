"""Prompt token counts: OpenAI's own tokenizers from the bundled files, offline; an estimate otherwise."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tiktoken
from tiktoken_ext import openai_public

from tenants.quotas import tokens
from tenants.quotas.tokens import (
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    TOKENS_PER_TOOL_CALL,
    TOKENS_REPLY_PRIMING,
    TOKENS_TOOLS_PREAMBLE,
    TokenCount,
    count_chat_prompt_tokens,
    count_embedding_input_tokens,
    count_text_tokens,
    encoding_for_model,
)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every connection off this machine fails, and tiktoken's download cache is empty."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in (
            "127.0.0.1",
            "::1",
            "localhost",
        ):
            raise ConnectionRefusedError(f"network blocked in this test: {address}")
        real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "::1", "localhost", None):
            raise socket.gaierror(f"name resolution blocked in this test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tokens.get_encoding.cache_clear()  # load the files again, under the block
    yield
    tokens.get_encoding.cache_clear()


def tiktoken_reference(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, Any]:
    """tiktoken's own definition of an encoding, its download served from our bundled file and
    checked by tiktoken against the hash it pins for that download."""
    real_load = openai_public.load_tiktoken_bpe
    served: list[str] = []

    def load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        filename = url.rsplit("/", 1)[1]
        served.append(filename)
        return real_load(str(tokens.ENCODINGS_DIR / filename), expected_hash=expected_hash)

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", load)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # a cache miss: the hash is checked
    definition: dict[str, Any] = openai_public.ENCODING_CONSTRUCTORS[name]()
    assert served == [f"{name}.tiktoken"]
    return definition


@pytest.mark.parametrize("name", tokens.ENCODING_NAMES)
def test_the_bundled_encodings_are_exactly_tiktokens(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reference = tiktoken_reference(name, monkeypatch, tmp_path)
    ours = tokens.get_encoding(name)
    assert ours._pat_str == reference["pat_str"]
    assert ours._special_tokens == reference["special_tokens"]
    assert ours._mergeable_ranks == reference["mergeable_ranks"]
    theirs = tiktoken.Encoding(**reference)
    text = "Grüße, 世界! def f(x):\n\treturn x**2  # 12345 don't  <|endoftext|>"
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


def test_known_vectors() -> None:
    cl100k, o200k = tokens.get_encoding("cl100k_base"), tokens.get_encoding("o200k_base")
    assert cl100k.encode("hello world") == [15339, 1917]
    assert o200k.encode("hello world") == [24912, 2375]
    assert cl100k.encode("<|endoftext|>", allowed_special="all") == [100257]
    assert o200k.encode("<|endoftext|>", allowed_special="all") == [199999]
    assert (cl100k.n_vocab, o200k.n_vocab) == (100277, 200019)
    text = "Straße 🚀 日本語 \r\n\t 0123456789"
    assert cl100k.decode(cl100k.encode(text)) == text
    assert o200k.decode(o200k.encode(text)) == text


def test_counting_never_needs_the_network(offline: None) -> None:
    with socket.socket() as sock, pytest.raises(OSError, match="blocked"):
        sock.connect(("192.0.2.1", 443))
    with pytest.raises(OSError, match="blocked"):
        tiktoken.get_encoding("o200k_base")  # what tiktoken alone would do: download
    assert count_text_tokens("gpt-4o", "hello world") == TokenCount(2, exact=True)
    assert count_text_tokens("gpt-4", "hello world") == TokenCount(2, exact=True)
    chat = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hello world"}]}
    assert count_chat_prompt_tokens("gpt-4.1-mini", chat).exact


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-4.5-preview", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5.1-codex", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("GPT-4O", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-4-32k-0613", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-35-turbo-16k", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("claude-3-5-sonnet-latest", None),
        ("mistral-large", None),
        ("o100-custom", None),
        ("gpt-4x", None),
        ("", None),
    ],
)
def test_models_map_to_their_encoding(model: str, encoding: str | None) -> None:
    found = encoding_for_model(model)
    assert (found.name if found else None) == encoding


def test_a_chat_prompt_is_its_text_counted_by_tiktoken_plus_the_documented_framing() -> None:
    enc = tokens.get_encoding("o200k_base")
    arguments = '{"city": "Zürich", "unit": "celsius"}'
    weather = {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    payload = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "name": "ada", "content": "Weather in Zürich? <|endoftext|>"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "4°C, fog"},
            {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
        ],
        "tools": [{"type": "function", "function": weather}],
    }
    texts = [
        "system", "You are terse.",
        "user", "ada", "Weather in Zürich? <|endoftext|>",
        "assistant", "get_weather", arguments,
        "tool", "4°C, fog",
        "user", "And tomorrow?",
        '{"name":"get_weather","description":"Current weather for a city.","parameters":'
        '{"type":"object","properties":{"city":{"type":"string"}}}}',
    ]  # fmt: skip
    framing = (
        5 * TOKENS_PER_MESSAGE
        + TOKENS_PER_NAME
        + TOKENS_PER_TOOL_CALL
        + TOKENS_TOOLS_PREAMBLE
        + TOKENS_REPLY_PRIMING
    )
    text_tokens = sum(len(enc.encode_ordinary(t)) for t in texts)
    assert count_chat_prompt_tokens("gpt-4o", payload) == TokenCount(
        text_tokens + framing, exact=True
    )


def test_the_simplest_chat_follows_openais_published_framing() -> None:
    # 3 per message + role + content, 3 to prime the reply: "hello world" on gpt-4o is 9.
    payload = {"messages": [{"role": "user", "content": "hello world"}]}
    assert count_chat_prompt_tokens("gpt-4o", payload) == TokenCount(3 + 1 + 2 + 3, exact=True)


def test_an_unknown_model_is_estimated_and_says_so() -> None:
    text = "x" * 41  # ceil(41 / 4) = 11
    payload = {"messages": [{"role": "user", "content": text}]}
    # role "user": ceil(4 / 4) = 1
    assert count_chat_prompt_tokens("claude-sonnet-4", payload) == TokenCount(
        TOKENS_PER_MESSAGE + 1 + 11 + TOKENS_REPLY_PRIMING, exact=False
    )
    assert count_text_tokens("llama-3.1-70b", text) == TokenCount(11, exact=False)
    # Estimated from UTF-8 bytes, so scripts that spend more tokens per character weigh more.
    assert count_text_tokens("llama-3.1-70b", "日本語") == TokenCount(3, exact=False)


def test_images_and_files_make_a_known_model_count_inexact() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    low = {"type": "image_url", "image_url": {"url": "https://example.test/a.png", "detail": "low"}}
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}

    def count(*parts: dict[str, Any]) -> TokenCount:
        content = [{"type": "text", "text": "hi"}, *parts]
        return count_chat_prompt_tokens(
            "gpt-4o", {"messages": [{"role": "user", "content": content}]}
        )

    text_only = count()
    assert text_only.exact
    assert count(image) == TokenCount(text_only.tokens + tokens.IMAGE_TOKENS, exact=False)
    assert count(low) == TokenCount(text_only.tokens + tokens.IMAGE_LOW_DETAIL_TOKENS, exact=False)
    assert count(audio) == TokenCount(text_only.tokens + tokens.OPAQUE_PART_TOKENS, exact=False)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"messages": None, "tools": "nope", "functions": 3},
        {"messages": ["just a string", 42, {"role": "user", "content": {"odd": True}}]},
        {"messages": [{"role": "assistant", "tool_calls": "x", "function_call": {"name": "f"}}]},
        {"messages": [{"role": "user", "content": [None, "bare", {"type": "text"}]}]},
        {"messages": [], "response_format": {"type": "json_schema", "json_schema": None}},
        {"messages": [{"role": "user", "content": {"n": 2**70}}]},
    ],
)
def test_a_malformed_chat_payload_is_counted_not_raised(payload: dict[str, Any]) -> None:
    for model in ("gpt-4o", "unknown-model"):
        assert count_chat_prompt_tokens(model, payload).tokens >= TOKENS_REPLY_PRIMING


def test_a_json_schema_response_format_counts_as_prompt() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    schema = {"name": "answer", "schema": {"type": "object"}}
    with_schema = {**base, "response_format": {"type": "json_schema", "json_schema": schema}}
    extra = len(tokens.get_encoding("o200k_base").encode_ordinary(
        '{"name":"answer","schema":{"type":"object"}}'
    ))  # fmt: skip
    assert (
        count_chat_prompt_tokens("gpt-4o", with_schema).tokens
        == count_chat_prompt_tokens("gpt-4o", base).tokens + extra
    )


def test_embedding_inputs_of_every_shape() -> None:
    model = "text-embedding-3-small"
    assert count_embedding_input_tokens(model, "hello world") == TokenCount(2, exact=True)
    assert count_embedding_input_tokens(model, ["hello world", "hello"]) == TokenCount(3, True)
    assert count_embedding_input_tokens(model, [15339, 1917, 0]) == TokenCount(3, exact=True)
    assert count_embedding_input_tokens(model, [[15339, 1917], [0]]) == TokenCount(3, True)
    assert count_embedding_input_tokens(model, []) == TokenCount(0, exact=True)
    # Token arrays are exact whatever the model; strings need the model's tokenizer.
    assert count_embedding_input_tokens("nomic-embed", [[1, 2, 3]]) == TokenCount(3, True)
    assert count_embedding_input_tokens("nomic-embed", "x" * 9) == TokenCount(3, exact=False)
    assert not count_embedding_input_tokens(model, [{"odd": 1}]).exact


def test_a_damaged_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "cl100k_base.tiktoken").write_bytes(b"IQ== 0\n")
    monkeypatch.setattr(tokens, "ENCODINGS_DIR", tmp_path)
    tokens.get_encoding.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="damaged"):
            tokens.get_encoding("cl100k_base")
    finally:
        tokens.get_encoding.cache_clear()


def test_estimates_round_up() -> None:
    assert count_text_tokens("unknown", "abcde").tokens == math.ceil(5 / 4)
    assert count_text_tokens("unknown", "") == TokenCount(0, exact=False)
