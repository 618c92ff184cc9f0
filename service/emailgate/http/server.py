"""The HTTP server around the app: aiohttp's, with its parser-error path made safe.

A request aiohttp's HTTP parser refuses (a header value with a stray CR, an over-long or
unencoded URL, a bad method) never reaches the app or its middlewares. aiohttp then logs the
parser's message at ERROR, and that message quotes the raw bytes it choked on (a client key,
an address in a query string), and answers a plain-text 400 quoting them again. aiohttp has
no public hook for this path (aio-libs/aiohttp#3287), so the one method that builds that
answer, `RequestHandler.handle_error`, is overridden here: one log line naming only the
error's class, and the contract's JSON error.

`run` replaces `web.run_app` so that runner is used; it keeps run_app's behaviour: SIGINT and
SIGTERM stop accepting, requests in flight get `shutdown_timeout` seconds, then the app's
cleanup runs. It runs on uvloop: the same app answers cache hits faster (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from http import HTTPStatus
from typing import Any

import uvloop
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_runner import GracefulExit

from emailgate import latency
from emailgate.http.errors import error

log = logging.getLogger("emailgate.http")

ACCEPT_GRACE_S = 0.5
"""On SIGTERM, how long the listeners stay open to take the connections already waiting."""


class SafeRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering requests it cannot parse in the contract's
    shape and logging nothing the client sent."""

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            # Not the parser: something of ours failed outside the middlewares. The traceback
            # is ours to read; the request's own bytes are not in it.
            log.error("unhandled error outside the app", exc_info=exc)
            text = "internal error"
        else:
            # The parser's message quotes the raw request: only its class is logged, at
            # debug because anyone on the internet can cause it at will.
            log.debug(
                "malformed request refused",
                extra={"event": "bad_http", "status": status, "error": type(exc).__name__},
            )
            text = _HINTS.get(type(exc).__name__, "malformed HTTP request")
        if request.writer.output_size > 0:
            raise ConnectionError("the response had started; the connection is dropped")
        response = error(status, f"{HTTPStatus(status).phrase}: {text}")
        response.force_close()
        return response


_HINTS = {
    "LineTooLong": "a request line or header line is too long",
    "BadHttpMethod": "not an HTTP request (bad method)",
    "BadStatusLine": "bad request line (is the URL percent-encoded?)",
    "InvalidURLError": "bad URL (is it percent-encoded?)",
    "InvalidHeader": "a header is malformed (a stray CR or LF in a value?)",
    "TransferEncodingError": "the body's transfer encoding is malformed",
    "ContentLengthError": "the body does not match its Content-Length",
}


class SafeServer(web.Server):
    """aiohttp's low-level server, making SafeRequestHandlers."""

    def __init__(self, made: web.Server, **handler_options: Any) -> None:
        super().__init__(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            **handler_options,
        )
        self._handler_options = handler_options

    def __call__(self) -> RequestHandler:
        return SafeRequestHandler(self, loop=asyncio.get_running_loop(), **self._handler_options)


class SafeAppRunner(web.AppRunner):
    """An AppRunner whose server is a SafeServer (the app and its startup are unchanged)."""

    def __init__(self, app: web.Application, **options: Any) -> None:
        self._handler_options = {
            k: options.pop(k)
            for k in list(options)
            if k not in {"handle_signals", "shutdown_timeout"}
        }
        super().__init__(app, **options, **self._handler_options)

    async def _make_server(self) -> web.Server:
        # aiohttp builds the server (app startup, frozen app); only its handler class changes.
        return SafeServer(await super()._make_server(), **self._handler_options)


def run(
    app: web.Application,
    *,
    sockets: list[socket.socket],
    shutdown_timeout: float,
    **handler_options: Any,
) -> None:
    """Serve `app` on `sockets` (bound already, so a port in use fails before anything
    starts) until SIGINT or SIGTERM, as `web.run_app` does."""
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, sockets, shutdown_timeout, handler_options))
    try:
        loop.run_until_complete(main)
    except (GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            main.cancel()  # its `finally` shuts the server down gracefully
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        finally:
            rest = asyncio.all_tasks(loop)
            for task in rest:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()


async def _serve(
    app: web.Application,
    sockets: list[socket.socket],
    shutdown_timeout: float,
    handler_options: dict[str, Any],
) -> None:
    runner = SafeAppRunner(
        app, handle_signals=True, shutdown_timeout=shutdown_timeout, **handler_options
    )
    await runner.setup()
    try:
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        latency.tune()  # what start-up made lives for ever: out of the collector's sight
        await asyncio.Event().wait()  # until a signal raises GracefulExit here
    finally:
        # Connections the kernel took before the signal are served, not reset: uvloop may
        # run the signal's callback before their accept, and cleanup closes the listeners.
        await asyncio.sleep(ACCEPT_GRACE_S)
        await runner.cleanup()
