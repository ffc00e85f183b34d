"""Prompt tokens counted before forwarding, so token limits and budget reservations hold.

The model's own tokenizer where it is known (OpenAI's cl100k_base and o200k_base, shipped in
`encodings/` so nothing is ever fetched from the network), a documented estimate otherwise.
Pure Python: no Django, no I/O beyond reading the bundled files once per process (call
`preload_for(models)` before those models are served, so no request pays for it). See docs/tokens.md.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import tiktoken

ENCODINGS_DIR = Path(__file__).with_name("encodings")

# Chat framing, as OpenAI's chat models render a conversation: every message costs its role,
# content and name plus a few tokens of markup, and the reply is primed with a few more.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3
TOKENS_PER_TOOL_CALL = 3  # the call's markup around its function name and arguments
TOKENS_TOOLS_PREAMBLE = 12  # the heading the model sees above its tool definitions
# Parts the gateway cannot tokenise: an image costs 85 tokens at "low" detail and 85 + 170 per
# 512-px tile otherwise (765 for a 1024x1024 image, assumed since the size is not known here);
# audio and files get a flat allowance. All of these make the count inexact.
IMAGE_LOW_DETAIL_TOKENS = 85
IMAGE_TOKENS = 765
OPAQUE_PART_TOKENS = 1000
ESTIMATE_BYTES_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class TokenCount:
    tokens: int
    exact: bool  # counted with the model's own tokenizer, nothing estimated


@dataclass(frozen=True, slots=True)
class _EncodingSpec:
    sha256: str  # as tiktoken pins it for the file it would download
    pat_str: str
    special_tokens: Mapping[str, int]


# The definitions of tiktoken_ext/openai_public.py (a test checks they still agree).
_SPECS: dict[str, _EncodingSpec] = {
    "cl100k_base": _EncodingSpec(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        special_tokens={
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": _EncodingSpec(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
}
ENCODING_NAMES = tuple(_SPECS)

# Model name (after any "provider/" and "ft:" prefix) -> encoding; the first entry that equals
# the name, or is followed in it by "-", "." or ":", wins, so "gpt-4.1" must precede "gpt-4".
# gpt-oss uses o200k_harmony, which only adds special tokens to o200k_base's ranks.
_MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-5", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-oss", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),  # Azure's spelling
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
    ("davinci-002", "cl100k_base"),
    ("babbage-002", "cl100k_base"),
)


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """One of ENCODING_NAMES, built from the bundled file (checked against its pinned hash)."""
    spec = _SPECS[name]
    data = (ENCODINGS_DIR / f"{name}.tiktoken").read_bytes()
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise RuntimeError(f"{name}.tiktoken is damaged: its SHA-256 is not the pinned one")
    fields = data.split()  # "<base64 token> <rank>" per line
    ranks = dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True))
    return tiktoken.Encoding(
        name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=dict(spec.special_tokens)
    )


def preload_for(models: Iterable[str]) -> None:
    """Build the encodings these models count with (about half a second and 35-75 MiB each),
    off the event loop, before a request for them arrives. A worker whose deployments need
    none (their models are unknown to tiktoken) never loads any."""
    for name in {encoding_name_for_model(model) for model in models} - {None}:
        get_encoding(name)


@functools.lru_cache(maxsize=1024)
def encoding_name_for_model(model: str) -> str | None:
    name = model.strip().lower().rpartition("/")[2].removeprefix("ft:")
    for prefix, encoding in _MODEL_PREFIXES:
        if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1] in ("", "-", ".", ":"):
            return encoding
    return None


def encoding_for_model(model: str) -> tiktoken.Encoding | None:
    name = encoding_name_for_model(model)
    return get_encoding(name) if name else None


class _Tally:
    """Adds up tokens with the model's encoding, or the estimate when it has none."""

    __slots__ = ("encoding", "exact", "tokens")

    def __init__(self, model: str) -> None:
        self.encoding = encoding_for_model(model)
        self.exact = self.encoding is not None
        self.tokens = 0

    def text(self, value: str) -> None:
        if not value:
            return
        if self.encoding is not None:
            # Ordinary: text that spells a special token is billed as plain text, not rejected.
            self.tokens += len(self.encoding.encode_ordinary(value))
        else:
            self.tokens += math.ceil(len(value.encode()) / ESTIMATE_BYTES_PER_TOKEN)

    def value(self, value: Any) -> None:
        """A string as text; anything else as its compact JSON."""
        if value is None:
            return
        if not isinstance(value, str):
            try:
                value = orjson.dumps(value).decode()
            except TypeError:  # e.g. an integer beyond 64 bits
                value = str(value)
        self.text(value)

    def estimate(self, tokens: int) -> None:
        self.tokens += tokens
        self.exact = False

    def result(self) -> TokenCount:
        return TokenCount(self.tokens, self.exact)


def count_text_tokens(model: str, text: str) -> TokenCount:
    tally = _Tally(model)
    tally.text(text)
    return tally.result()


def count_chat_prompt_tokens(model: str, payload: Mapping[str, Any]) -> TokenCount:
    """An OpenAI chat request's prompt: messages, tool definitions and a JSON response schema.

    Never raises on a malformed payload: what it cannot read is counted as its JSON text.
    """
    tally = _Tally(model)
    for message in _list(payload.get("messages")):
        if isinstance(message, Mapping):
            _count_message(tally, message)
        else:
            tally.value(message)
    tally.tokens += TOKENS_REPLY_PRIMING
    tools = [t.get("function", t) for t in _list(payload.get("tools")) if isinstance(t, Mapping)]
    functions = [*tools, *_list(payload.get("functions"))]  # "functions": the legacy spelling
    if functions:
        tally.tokens += TOKENS_TOOLS_PREAMBLE
        for function in functions:
            tally.value(function)
    response_format = payload.get("response_format")
    if isinstance(response_format, Mapping):
        tally.value(response_format.get("json_schema"))
    return tally.result()


def _count_message(tally: _Tally, message: Mapping[str, Any]) -> None:
    tally.tokens += TOKENS_PER_MESSAGE
    tally.value(message.get("role"))
    name = message.get("name")
    if name:
        tally.value(name)
        tally.tokens += TOKENS_PER_NAME
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            _count_part(tally, part)
    else:
        tally.value(content)
    calls = _list(message.get("tool_calls"))
    if message.get("function_call"):  # the legacy spelling of a single tool call
        calls.append(message["function_call"])
    for call in calls:
        function = call.get("function", call) if isinstance(call, Mapping) else call
        tally.tokens += TOKENS_PER_TOOL_CALL
        if isinstance(function, Mapping):
            tally.value(function.get("name"))
            tally.value(function.get("arguments"))
        else:
            tally.value(function)


def _count_part(tally: _Tally, part: Any) -> None:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if isinstance(part, str):
        tally.text(part)
    elif kind in ("text", "refusal"):
        tally.value(part.get(kind))
    elif kind == "image_url":
        image = part.get("image_url")
        detail = image.get("detail") if isinstance(image, Mapping) else None
        tally.estimate(IMAGE_LOW_DETAIL_TOKENS if detail == "low" else IMAGE_TOKENS)
    else:
        tally.estimate(OPAQUE_PART_TOKENS)


def count_embedding_input_tokens(model: str, input: Any) -> TokenCount:
    """An embeddings request's `input`: a string, strings, a token array or token arrays.

    Token arrays count exactly whatever the model; strings as in count_text_tokens.
    """
    tally = _Tally(model)
    tally.exact = True  # only strings need the model's encoding
    items = input if isinstance(input, list) else [input]
    if items and all(_is_token(i) for i in items):
        tally.tokens += len(items)
        return tally.result()
    for item in items:
        if isinstance(item, str):
            tally.exact = tally.exact and tally.encoding is not None
            tally.text(item)
        elif isinstance(item, list) and all(_is_token(i) for i in item):
            tally.tokens += len(item)
        elif item is not None:
            tally.value(item)
            tally.exact = False
    return tally.result()


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []
