"""Limits that keep one slow or oversized client from holding the server: given to aiohttp's
server (`http/server.py`, an AppRunner) and to the body-reading middleware.

aiohttp closes a connection that has not delivered a whole request head within its keep-alive
timeout (that timer also runs from the moment a connection opens), so that one setting bounds
both idle keep-alive connections and clients that trickle their headers (slowloris). A proxy
in front keeping upstream connections alive must use a shorter idle timeout than this one.
"""

from __future__ import annotations

from typing import Any

MAX_REQUEST_LINE = 4096
"""Bytes in the request line: a verify URL with the longest address percent-encoded fits."""
MAX_HEADER_FIELD = 8190
"""Bytes in one header line (aiohttp's default; cookies can be long)."""
MAX_HEADERS = 64
"""Header lines in one request; browsers send about twenty."""
IDLE_TIMEOUT_S = 15.0
"""Seconds a connection may stay without a complete request head (idle or trickling)."""
BODY_TIMEOUT_S = 10.0
"""Seconds a request body (at most 8 KiB) may take to arrive before the answer is 408."""
LINGER_S = 2.0
"""Seconds spent reading the unread rest of a refused body before closing."""


def server_options(*, idle_timeout: float = IDLE_TIMEOUT_S) -> dict[str, Any]:
    """Keyword arguments for `server.run` or `web.AppRunner`."""
    return {
        "max_line_size": MAX_REQUEST_LINE,
        "max_field_size": MAX_HEADER_FIELD,
        "max_headers": MAX_HEADERS,
        "keepalive_timeout": idle_timeout,
        "lingering_time": LINGER_S,
    }
