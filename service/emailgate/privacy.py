"""Keyed hashes: addresses are personal data, so cache keys and logs carry these instead."""

from __future__ import annotations

import hashlib
import secrets


class Hasher:
    """BLAKE2b keyed with a secret: without the key a hash cannot be checked against guesses."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = b""
        self.rekey(key)

    def rekey(self, key: bytes) -> None:
        """Hash with `key` from now on (a replica adopting its fleet's key); every holder of
        this hasher follows, since they share the object."""
        if len(key) < 16:
            raise ValueError("the hash key must be at least 16 bytes")
        # BLAKE2b takes keys up to 64 bytes; a longer setting is folded down first.
        self._key = key if len(key) <= 64 else hashlib.sha512(key).digest()

    def fingerprint(self) -> str:
        """A short digest of the key itself, to compare keys without showing them."""
        return hashlib.blake2b(b"fingerprint", key=self._key, digest_size=4).hexdigest()

    @classmethod
    def random(cls) -> Hasher:
        """A hasher with a fresh key, for one process that shares its cache with no one."""
        return cls(secrets.token_bytes(32))

    def hash(self, text: str) -> str:
        """A 128-bit keyed digest of `text`, as 32 hex characters."""
        return hashlib.blake2b(text.encode(), key=self._key, digest_size=16).hexdigest()

    def __repr__(self) -> str:
        return "Hasher(key=********)"
