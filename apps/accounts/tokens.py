"""Personal API token secrets: how they look and how they are hashed. Only the hash is ever stored."""

import hashlib
import secrets

TOKEN_PREFIX = "mlp_"
PREFIX_LENGTH = 12  # "mlp_" + 8 characters, kept to let a user recognise a token in their settings page


def new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(secret: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:PREFIX_LENGTH]
