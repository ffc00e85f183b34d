"""Encryption at rest for provider credentials (Fernet: AES-128-CBC + HMAC-SHA256).

The first key of GATEWAY_CREDENTIAL_KEYS encrypts; every key decrypts, so a new key can be
put first and old tokens re-encrypted later (`python manage.py rotate_credentials`).
Without the setting, one key is derived from SECRET_KEY with HKDF.
"""

import base64
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@cache
def _fernet() -> MultiFernet:
    keys: list[str] = list(settings.CREDENTIAL_KEYS)
    if not keys:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"gateway-credentials"
        ).derive(settings.SECRET_KEY.encode())
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_secret(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


@cache
def derived_key(purpose: str) -> bytes:
    """A 32-byte key for one purpose (e.g. signing audit checkpoints), derived from SECRET_KEY."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"gateway-{purpose}".encode()
    ).derive(settings.SECRET_KEY.encode())
