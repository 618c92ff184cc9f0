"""Browser origins (RFC 6454): compared in one normal form, so `HTTPS://Shop.example:443`
in a keys file matches the `https://shop.example` a browser sends."""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


class OriginError(ValueError):
    """Not a `scheme://host[:port]` origin."""


def normalise_origin(text: str) -> str:
    """`scheme://host[:port]`, lower-cased, default port dropped; raise OriginError if not one."""
    text = text.strip()
    if "*" in text:
        raise OriginError("wildcards are not supported; list each origin")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise OriginError("not scheme://host[:port]") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise OriginError("the scheme must be http or https")
    if not parts.hostname:
        raise OriginError("no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise OriginError("an origin is scheme://host[:port], without path, query or user")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_of(header: str | None) -> str | None:
    """The normalised origin of an `Origin` header; None when absent, `null` or malformed."""
    if not header or header.strip() == "null":
        return None
    try:
        return normalise_origin(header)
    except OriginError:
        return None
