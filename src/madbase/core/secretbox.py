"""Encryption at rest for project secrets in the control plane (AES-256-GCM under the master key).

Each value is bound to where it is stored (project ref + field name) through the AEAD's associated data, so
a ciphertext copied into another row or column fails to decrypt instead of leaking.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class SecretBoxError(Exception):
    pass


class SecretBox:
    def __init__(self, master_key: str) -> None:
        if len(master_key) < 16:
            raise SecretBoxError("MADBASE_MASTER_KEY must be at least 16 characters")
        # Any string the operator chose becomes a 256-bit key; the domain prefix keeps it single-purpose.
        self._aead = AESGCM(hashlib.sha256(b"madbase-secretbox-v1:" + master_key.encode()).digest())

    def seal(self, plaintext: str, *, context: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, *, context: str) -> str:
        if len(sealed) < 13 or sealed[:1] != _VERSION:
            raise SecretBoxError("unknown ciphertext format")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], context.encode()).decode()
        except InvalidTag:
            raise SecretBoxError("cannot decrypt project secret: wrong MADBASE_MASTER_KEY?") from None


def load_or_create_key_file(path: Path) -> str:
    """The embedded default's master key: generated once, kept in the data folder with mode 0600."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
