"""An audit record in the form PostgreSQL can store, losslessly, and the way back.

JSON may carry characters PostgreSQL refuses: NUL (U+0000) in a text column or a jsonb string or
key, and lone surrogates (U+D800..U+DFFF), which UTF-8 cannot encode at all. The gateway forwards
such text (it is legal JSON; orjson refuses lone surrogates in a request, a Python value may still
hold them), so its record must hold it too.

The escaping, per column: in a column named in the record's `stored_escaped`, every string and
every object key is stored with `\\` written as `\\\\` and each refused character as `\\uXXXX`
(four lowercase hex digits of its UTF-16 code unit). A column that held no refused character is
stored untouched and not named. `original` reverses it exactly. Pure: no Django, no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import orjson

from audit.entries import AuditEntry

# The rule as exports' manifests state it.
STORED_RULE = (
    "in the columns a record names in stored_escaped, every string and object key is stored with "
    "each backslash doubled and each NUL or lone surrogate written as \\uXXXX (lowercase hex); "
    "undo both to read the original"
)

# What PostgreSQL cannot store: NUL in text and jsonb, surrogates in UTF-8.
_REFUSED = re.compile("[\x00\ud800-\udfff]")
_ESCAPED = re.compile(r"\\(\\|u([0-9a-f]{4}))")

# How deep a request may nest: orjson, which writes the record (and the upstream request), stops
# at 254 levels; the headroom is for what translation and the record's own wrapping add.
MAX_DEPTH = 200
_HEADROOM = 254 - MAX_DEPTH


def refused_in(value: Any) -> bool:
    """Whether any string or object key in `value` holds a character PostgreSQL refuses."""
    if isinstance(value, str):
        return _REFUSED.search(value) is not None
    if isinstance(value, dict):
        return any(refused_in(key) or refused_in(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(refused_in(item) for item in value)
    return False


def escape_text(text: str) -> str:
    return _REFUSED.sub(_code_unit, text.replace("\\", "\\\\"))


def _code_unit(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def unescape_text(text: str) -> str:
    return _ESCAPED.sub(_unescaped, text)


def _unescaped(match: re.Match[str]) -> str:
    code = match.group(2)
    return "\\" if code is None else chr(int(code, 16))


def readable_text(text: str) -> str:
    """The original text, with each refused character shown as `⟨U+0000⟩` (a page can carry
    neither NUL nor a lone surrogate)."""
    return _ESCAPED.sub(_marked, text)


def _marked(match: re.Match[str]) -> str:
    code = match.group(2)
    return "\\" if code is None else f"⟨U+{code.upper()}⟩"


def _walk(value: Any, change: Any) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {change(key): _walk(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item, change) for item in value]
    return value


def _surely_clean(value: Any) -> bool:
    """A fast answer for the common case: one serialisation in C instead of a walk in Python
    (orjson writes every NUL as `\\u0000` and refuses surrogates). False means: look closely."""
    if isinstance(value, str):
        return _REFUSED.search(value) is None
    if not isinstance(value, dict | list | tuple):
        return True
    try:
        return b"\\u0000" not in orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False


def storable(value: Any) -> tuple[Any, bool]:
    """`value` as it can be stored, and whether it had to be escaped (then every string is)."""
    if _surely_clean(value) or not refused_in(value):
        return value, False
    return _walk(value, escape_text), True


def original(value: Any, *, escaped: bool) -> Any:
    """A stored column's value as it was before `storable` (exact)."""
    return _walk(value, unescape_text) if escaped else value


def readable(value: Any, *, escaped: bool) -> Any:
    """A stored column's value for a page: the original, refused characters shown as marks."""
    return _walk(value, readable_text) if escaped else value


def storable_entry(entry: AuditEntry) -> AuditEntry:
    """The record as it is written: each column holding a refused character escaped, and named
    in `stored_escaped`. A copy; the entry itself keeps the original text."""
    changes: dict[str, Any] = {}
    for item in dataclasses.fields(AuditEntry):
        if item.name == "stored_escaped":
            continue
        stored, escaped = storable(getattr(entry, item.name))
        if escaped:
            changes[item.name] = stored
    if not changes:
        return entry if not entry.stored_escaped else dataclasses.replace(entry, stored_escaped=[])
    return dataclasses.replace(entry, **changes, stored_escaped=sorted(changes))


def too_deep(body: bytes, value: Any) -> bool:
    """Whether a parsed request nests deeper than MAX_DEPTH (so its record could not be written).

    Only a body with that many brackets can; for it, one serialisation in C with MAX_DEPTH's
    headroom decides (orjson refuses past its limit).
    """
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    for _ in range(_HEADROOM):
        value = [value]
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return True
    return False
