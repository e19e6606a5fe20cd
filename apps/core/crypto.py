"""Encryption of stored secrets (data connection passwords): Fernet (AES-128-CBC + HMAC-SHA256, authenticated).

The key is settings.FIELD_ENCRYPTION_KEY (a Fernet key: `python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"`). When it is empty, a key is derived from SECRET_KEY with HKDF-SHA256, so a
development install works without configuration; keys derived from SECRET_KEY_FALLBACKS still decrypt, so rotating
SECRET_KEY the documented way does not make stored passwords unreadable at once (re-save them, or set
FIELD_ENCRYPTION_KEY in production).
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_HKDF_INFO = b"mlplatform field encryption v1"


class DecryptionError(Exception):
    """The ciphertext was not made with any configured key, or was altered."""


def derive_key(secret: str) -> bytes:
    """A Fernet key (urlsafe base64 of 32 bytes) derived from an arbitrary secret string with HKDF-SHA256."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(raw)


def _keys() -> list[bytes]:
    configured = settings.FIELD_ENCRYPTION_KEY
    if configured:
        key = configured.encode() if isinstance(configured, str) else configured
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64-encoded bytes)."
            ) from exc
        return [key]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [derive_key(secret) for secret in secrets if secret]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys()])


def encrypt_text(plaintext: str) -> str:
    """Encrypt with the current key; the result is ASCII, safe for a TextField."""
    return _fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt_text(ciphertext: str) -> str:
    """Decrypt with the current key or a fallback; DecryptionError if none fits (never the key or plaintext)."""
    try:
        return _fernet().decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError("The stored secret cannot be decrypted with the configured keys.") from exc
