"""The error body (docs/api.md "Errors"): `{"success": false, "message": str}`."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

JSON = "application/json; charset=utf-8"


def json_response(
    data: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response serialised with orjson."""
    response = web.Response(body=orjson.dumps(data), status=status, headers=headers)
    response.headers["Content-Type"] = JSON
    return response


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """An error answer in the documented shape."""
    return json_response({"success": False, "message": message}, status=status, headers=headers)


class BadRequest(Exception):
    """The request is malformed; the message tells the caller how (a 400)."""
