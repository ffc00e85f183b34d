"""Text as an injection detector should see it, whatever the attacker did to hide it.

Unicode NFKC (full-width and other compatibility forms fold to ASCII), zero-width and bidi
controls removed, case folded, letters spaced out ("i g n o r e") joined, and obvious base64 or
hex runs decoded and appended, so "aWdub3JlIGFsbCBwcmV2aW91cw==" is read as what it says.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0]"
)
_SPACED_LETTERS = re.compile(r"(?<!\w)(?:\w[ .\-_*]){4,}\w(?!\w)")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9_-]{24,}={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}[ :]?){8,}")
_WHITESPACE = re.compile(r"[^\S\n]+")
_MAX_DECODED = 8


@dataclass(frozen=True, slots=True)
class Normalised:
    text: str  # the whole text, normalised
    decoded: tuple[str, ...]  # what was hidden in base64 or hex, normalised

    @property
    def obfuscated(self) -> bool:
        return bool(self.decoded)


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(ch.isalpha() or ch == " " for ch in text)
    return text if len(text) >= 8 and letters / len(text) > 0.8 else None


def _decode_base64(token: str) -> str | None:
    try:
        padded = token + "=" * (-len(token) % 4)
        raw = (
            base64.urlsafe_b64decode(padded)
            if "-" in token or "_" in token
            else base64.b64decode(padded, validate=True)
        )
    except (binascii.Error, ValueError):
        return None
    return _printable(raw)


def _decode_hex(token: str) -> str | None:
    try:
        return _printable(bytes.fromhex(re.sub(r"[ :]", "", token)))
    except ValueError:
        return None


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text).casefold()
    text = _SPACED_LETTERS.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)
    return _WHITESPACE.sub(" ", text)


def normalise(text: str) -> Normalised:
    decoded: list[str] = []
    visible = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    for regex, decoder in ((_BASE64, _decode_base64), (_HEX, _decode_hex)):
        for match in regex.finditer(visible):
            plain = decoder(match.group(0))
            if plain:
                decoded.append(_fold(plain))
                if len(decoded) >= _MAX_DECODED:
                    break
    return Normalised(_fold(visible), tuple(decoded))
