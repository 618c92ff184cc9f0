"""The keyed hasher: recent digests are memoised, and a new key never answers with old ones."""

from __future__ import annotations

from emailgate.privacy import Hasher

OLD, NEW = b"o" * 32, b"n" * 32


def test_after_a_rekey_digests_are_the_new_keys() -> None:
    """A digest memoised under the old key is not served after `rekey`."""
    hasher = Hasher(OLD)
    before = hasher.hash("alice@example.com")
    assert hasher.hash("alice@example.com") == before  # memoised, same answer
    hasher.rekey(NEW)
    assert hasher.hash("alice@example.com") == Hasher(NEW).hash("alice@example.com") != before


def test_the_memo_shows_no_key_or_text() -> None:
    """Neither the repr of the hasher nor of its memoised function carries the key or inputs."""
    hasher = Hasher(OLD)
    hasher.hash("alice@example.com")
    shown = repr(hasher) + repr(hasher.hash) + str(hasher.hash.__dict__)
    assert "ooo" not in shown and "alice" not in shown
