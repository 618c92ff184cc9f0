"""The browser widget (`/static/emailgate.js`) and the demo signup page (`/demo`)."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from email import policy as email_policy
from email.parser import BytesParser
from importlib import resources

from aiohttp import web

from emailgate import appkeys
from emailgate.http.errors import BadRequest

WIDGET_PATH = "/static/emailgate.js"
DEMO_PATH = "/demo"

# The script's URL carries no version, so browsers keep it for an hour and then revalidate
# with its ETag (a 304 costs a few bytes); an upgrade reaches every page within the hour.
WIDGET_CACHE = "public, max-age=3600, stale-while-revalidate=86400"
# RFC 9239: text/javascript is the one JavaScript media type.
JAVASCRIPT = "text/javascript; charset=utf-8"
HTML = "text/html; charset=utf-8"

# The demo runs only its own files: no inline script, nothing from elsewhere. 'unsafe-inline'
# styles are for the page's own <style>; the widget's rules come as a constructed stylesheet.
DEMO_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
DEMO_HEADERS = {
    "Content-Type": HTML,
    "Content-Security-Policy": DEMO_CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

_THANKS = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Signed up · emailgate demo</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
</style></head>
<body>
<h1 id="thanks">Thanks, the form was submitted</h1>
<p>The demo's server received <strong id="submitted-email">{email}</strong> and stored nothing.
A real signup handler checks the address again on the server, with a private key.</p>
<p><a href="/demo">Back to the demo</a></p>
</body>
</html>
"""


@dataclass(frozen=True, slots=True)
class Asset:
    """A file of the package served from memory, with its validator."""

    body: bytes
    etag: str

    @classmethod
    def load(cls, name: str) -> Asset:
        """Read `emailgate/static/<name>` (a missing file fails the app's build, loudly)."""
        body = resources.files("emailgate").joinpath("static", name).read_bytes()
        return cls(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def install(app: web.Application) -> None:
    """Add the widget and demo routes to `app`."""
    widget = Asset.load("emailgate.js")

    async def emailgate_js(request: web.Request) -> web.Response:
        headers = {
            "Content-Type": JAVASCRIPT,
            "Cache-Control": WIDGET_CACHE,
            "ETag": widget.etag,
            # Pages on any origin load it; `crossorigin` + integrity (SRI) needs CORS too.
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        given = _etags(request.headers.get("If-None-Match", ""))
        if widget.etag in given or "*" in given:
            return web.Response(status=304, headers=headers)
        return web.Response(body=widget.body, headers=headers)

    app.router.add_get(WIDGET_PATH, emailgate_js)

    if not app[appkeys.SETTINGS].demo:
        return
    demo = Asset.load("demo.html")

    async def demo_page(request: web.Request) -> web.Response:
        return web.Response(body=demo.body, headers=DEMO_HEADERS)

    async def demo_submitted(request: web.Request) -> web.Response:
        # Stands in for a site's signup handler: it echoes (escaped) and keeps nothing.
        shown = html.escape(await _posted_email(request))
        return web.Response(body=_THANKS.format(email=shown).encode(), headers=DEMO_HEADERS)

    app.router.add_get(DEMO_PATH, demo_page)
    app.router.add_post(DEMO_PATH, demo_submitted)


async def _posted_email(request: web.Request) -> str:
    """The form's `email` field, urlencoded or multipart; "" when there is none.

    The body was already read by the body time limit (http/middlewares.py), which leaves
    aiohttp's own multipart reader nothing to read: multipart is parsed from the bytes here.
    """
    if request.content_type != "multipart/form-data":
        try:
            email = (await request.post()).get("email")
        except (ValueError, LookupError):  # an unknown charset, undecodable bytes
            raise BadRequest("the form body cannot be read (charset?)") from None
        return email if isinstance(email, str) else ""
    body = await request.read()
    head = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode()
    message = BytesParser(policy=email_policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest("the multipart body has no parts (boundary missing or wrong)")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "email":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def _etags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compared as strong: RFC 9110)."""
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
