"""Saving and loading fitted pipelines, signed: nothing is unpickled unless its SHA-256 and HMAC signature verify.

A pickle runs code when loaded, so a model artifact is only as trustworthy as whoever could write it. Each artifact is
recorded with its SHA-256 and an HMAC-SHA256 made with a server secret; `load_model` checks both (in constant time)
before unpickling and refuses otherwise. Training writes with `dump_model` + `sign`; the model server loads with
`load_model`.
"""

import hashlib
import hmac
import io

import joblib


class ArtifactTampered(Exception):
    """The bytes do not match their recorded SHA-256 or signature: they were not loaded."""


def dump_model(pipeline) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return buffer.getvalue()


def _require_key(key: bytes) -> None:
    if not isinstance(key, bytes) or not key:
        raise ValueError("The artifact signing key must be non-empty bytes.")


def sign(data: bytes, key: bytes) -> str:
    """HMAC-SHA256 of the artifact bytes, hex."""
    _require_key(key)
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def verify(data: bytes, *, sha256: str, signature: str, key: bytes) -> None:
    """Raise ArtifactTampered unless `data` has this SHA-256 and this signature under `key`."""
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), str(sha256).lower()):
        raise ArtifactTampered("The artifact's SHA-256 does not match the recorded one.")
    if not hmac.compare_digest(sign(data, key), str(signature).lower()):
        raise ArtifactTampered("The artifact's signature does not verify.")


def load_model(data: bytes, *, sha256: str, signature: str, key: bytes):
    """The unpickled pipeline, only after `verify` passed."""
    verify(data, sha256=sha256, signature=signature, key=key)
    return joblib.load(io.BytesIO(data))
