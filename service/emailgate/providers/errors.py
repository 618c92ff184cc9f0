"""Why a provider gave no verdict. Each class names its metric `outcome`.

ProviderError
├── ProviderTimeout        timeout        no answer within the budget
├── RateLimited            rate_limited   429; pause the provider for `retry_after`
├── NoCredits              no_credits     402; stop calling until credits come back
├── Unauthorized           unauthorized   401/403; the key is refused
├── BadResponse            bad_response   a body that is not the documented JSON
└── ProviderUnavailable    error          5xx, refused or reset connection
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call that produced no verdict."""

    outcome = "error"


class ProviderTimeout(ProviderError):
    """The provider did not answer within the budget."""

    outcome = "timeout"


class RateLimited(ProviderError):
    """The provider answered 429: too many requests."""

    outcome = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NoCredits(ProviderError):
    """The provider answered 402: the account has no credits left."""

    outcome = "no_credits"


class Unauthorized(ProviderError):
    """The provider refused our key (401 or 403)."""

    outcome = "unauthorized"


class BadResponse(ProviderError):
    """The provider answered something that is not its documented JSON."""

    outcome = "bad_response"


class ProviderUnavailable(ProviderError):
    """A 5xx, or a refused or reset connection."""

    outcome = "error"
