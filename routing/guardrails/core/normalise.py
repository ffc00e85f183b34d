"""Text as an injection detector should see it, whatever the attacker did to hide it.

Unicode NFKC (full-width and other compatibility forms fold to ASCII), zero-width and bidi
controls removed, case folded, letters spaced out ("i g n o r e", "i-g-n-o-r-e") joined, and
obvious base64 or hex runs decoded and kept beside the text, so "aWdub3JlIGFsbCBwcmV2aW91cw=="
is read as what it says.

Speed matters (this runs over every user turn): one pass over the whitespace-separated tokens
finds what needs the slower regular expressions, and the set of words it collects lets the rule
detector skip every rule whose trigger words are absent.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass
from itertools import repeat

_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0]"
)
_SPACED_LETTERS = re.compile(r"(?<!\w)(?:\w[ .\-_*]){4,}\w(?!\w)")
_SPACED_SEPARATORS = re.compile(r"[ .\-_*]")
_ODD_SPACE = re.compile(r"[^\S \n]")
_WHITESPACE = re.compile(r"[^\S\n]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9_-]{24,}={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}[ :]?){8,}")
_PUNCTUATION = ".,;:!?\"'()[]{}<>*`~_-/\\|"
_MAX_DECODED = 8


@dataclass(frozen=True, slots=True)
class Normalised:
    text: str  # the whole text, normalised
    decoded: tuple[str, ...]  # what was hidden in base64 or hex, normalised
    words: frozenset[str]  # the words of `text` and `decoded`, punctuation stripped

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


@dataclass(slots=True)
class _Scan:
    long_tokens: bool = False  # could hold base64 or hex
    spaced_hex: bool = False  # "48 65 6c 6c 6f ..."
    spaced_letters: bool = False  # "i g n o r e" or "i-g-n-o-r-e"


def _scan(tokens: list[str]) -> _Scan:
    # Token lengths as bytes, so runs are found by a C-speed substring search.
    lengths = bytes(map(min, map(len, tokens), repeat(255)))
    spaced = b"\x01" * 5 in lengths
    if not spaced and max(lengths, default=0) >= 9:
        spaced = any(
            len(t) >= 9 and t[1] in ".-_*" and t[3] in ".-_*" and t[5] in ".-_*"
            for t in set(tokens)
        )
    return _Scan(
        long_tokens=max(lengths, default=0) >= 16,
        spaced_hex=b"\x02" * 8 in lengths,
        spaced_letters=spaced,
    )


def _words(text: str) -> set[str]:
    return {word.strip(_PUNCTUATION) for word in set(text.split())}


def _fold(text: str, scan: _Scan) -> str:
    text = text.casefold()
    # The regex scan is the slow part: most prompts have single spaces and newlines only.
    odd = "\t" in text or "\r" in text or not text.isascii()
    if "  " in text or (odd and _ODD_SPACE.search(text)):
        text = _WHITESPACE.sub(" ", text)
    if scan.spaced_letters:
        text = _SPACED_LETTERS.sub(lambda m: _SPACED_SEPARATORS.sub("", m.group(0)), text)
    return text


def normalise(text: str) -> Normalised:
    if not text.isascii():
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    tokens = text.split()
    scan = _scan(tokens)
    decoded: list[str] = []
    if scan.long_tokens or scan.spaced_hex:
        # Only long tokens can hold base64 or unspaced hex: search them, not the whole text.
        where = text if scan.spaced_hex else " ".join(t for t in tokens if len(t) >= 16)
        for regex, decoder in ((_BASE64, _decode_base64), (_HEX, _decode_hex)):
            for match in regex.finditer(where):
                plain = decoder(match.group(0))
                if plain and len(decoded) < _MAX_DECODED:
                    hidden = plain.split()
                    decoded.append(_fold(plain, _scan(hidden)))
    folded = _fold(text, scan)
    words = (
        _words(folded)
        if scan.spaced_letters
        else {token.casefold().strip(_PUNCTUATION) for token in set(tokens)}
    )
    for plain in decoded:
        words |= _words(plain)
    return Normalised(folded, tuple(decoded), frozenset(words))
