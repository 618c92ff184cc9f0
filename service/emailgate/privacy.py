"""Keyed hashes: addresses are personal data, so cache keys and logs carry these instead."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable

MEMO = 4096
"""Recent digests kept per hasher: a check hashes its address for the cache key and again
for its log line, and every request hashes its client's bucket; these repeat."""


class Hasher:
    """BLAKE2b keyed with a secret: without the key a hash cannot be checked against guesses."""

    __slots__ = ("_key", "hash")

    def __init__(self, key: bytes) -> None:
        self._key = b""
        self.hash: Callable[[str], str] = self._hash
        """A 128-bit keyed digest of a text, as 32 hex characters (recent ones memoised)."""
        self.rekey(key)

    def rekey(self, key: bytes) -> None:
        """Hash with `key` from now on (a replica adopting its fleet's key); every holder of
        this hasher follows, since they share the object."""
        if len(key) < 16:
            raise ValueError("the hash key must be at least 16 bytes")
        # BLAKE2b takes keys up to 64 bytes; a longer setting is folded down first.
        self._key = key if len(key) <= 64 else hashlib.sha512(key).digest()
        self.hash = functools.lru_cache(maxsize=MEMO)(self._hash)  # the old key's digests go

    def fingerprint(self) -> str:
        """A short digest of the key itself, to compare keys without showing them."""
        return hashlib.blake2b(b"fingerprint", key=self._key, digest_size=4).hexdigest()

    @classmethod
    def random(cls) -> Hasher:
        """A hasher with a fresh key, for one process that shares its cache with no one."""
        return cls(secrets.token_bytes(32))

    def _hash(self, text: str) -> str:
        return hashlib.blake2b(text.encode(), key=self._key, digest_size=16).hexdigest()

    def __repr__(self) -> str:
        return "Hasher(key=********)"
