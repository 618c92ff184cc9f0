"""The browser widget (`/static/emailgate.js`) and the demo signup page (`/demo`)."""

from __future__ import annotations

from aiohttp import web


def install(app: web.Application) -> None:
    """Add the widget and demo routes to `app`."""
