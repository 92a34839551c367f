"""Encryption at rest for what the store keeps secret (live-session tokens).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`. The key comes from STORE_SECRET_KEY:
one key, or several separated by commas (the first encrypts, all decrypt: rotate by putting
a new key first). A value that is not a Fernet key is treated as a passphrase and stretched
with SHA-256, so use a long random one. When STORE_SECRET_KEY is unset, a random key is
created once in `<data dir>/store.key` (mode 0600) and reused; replicas on several machines
must share STORE_SECRET_KEY instead, or they cannot read each other's sessions.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.store.base import StoreError

KEY_FILE = "store.key"


class Sealer:
    """Encrypts and decrypts JSON values; never shows its keys."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def __repr__(self) -> str:
        return "Sealer(<keys hidden>)"

    def seal(self, value: dict[str, Any] | None) -> str | None:
        if value is None:
            return None
        return self._fernet.encrypt(json.dumps(value).encode()).decode("ascii")

    def open(self, sealed: str | None) -> dict[str, Any] | None:
        if sealed is None:
            return None
        try:
            return json.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except InvalidToken:
            raise StoreError(
                "A live session in the state store was encrypted with another key: every "
                "replica must use the same STORE_SECRET_KEY."
            ) from None


def _as_fernet_key(value: str) -> bytes:
    raw = value.strip().encode()
    with contextlib.suppress(binascii.Error, ValueError):
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def key_file_key(data_dir: Path) -> bytes:
    """The key in `<data_dir>/store.key`, created (0600, atomically) on first use."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
            f.flush()
            os.fsync(f.fileno())
        # link() fails when another process created the file first: theirs wins, both use it.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return path.read_bytes().strip()


def make_sealer(secret: str | None, data_dir: Path) -> Sealer:
    if secret and secret.strip():
        return Sealer([_as_fernet_key(k) for k in secret.split(",") if k.strip()])
    return Sealer([key_file_key(data_dir)])
