"""Virtual key material: generated here, shown once, stored only as a hash."""

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "gw-"
DISPLAY_PREFIX_LENGTH = 10  # "gw-" + 7 characters: enough to tell keys apart in a list


@dataclass(frozen=True, slots=True)
class NewKey:
    plaintext: str
    prefix: str
    key_hash: str


def hash_key(plaintext: str) -> str:
    # Keys carry 256 bits of entropy, so a fast unsalted hash is safe and lets lookups be exact.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_from_plaintext(plaintext: str) -> NewKey:
    return NewKey(
        plaintext=plaintext, prefix=plaintext[:DISPLAY_PREFIX_LENGTH], key_hash=hash_key(plaintext)
    )


def generate_key(prefix: str = KEY_PREFIX) -> NewKey:
    return key_from_plaintext(prefix + secrets.token_urlsafe(32))
