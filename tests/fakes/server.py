"""What both fakes share: settings, lifecycle, the call log, fault injection and /_fake/ control.

Control endpoints (never logged as calls, never delayed or faulted):

| method and path         | what                                                              |
|-------------------------|-------------------------------------------------------------------|
| `GET /_fake/config`     | current settings (credits and quota are live counters)            |
| `POST /_fake/config`    | change settings: `{"latency_ms": 80, "jitter_ms": 40, "seed": 1}` |
| `GET /_fake/faults`     | queued faults with their remaining `times`                        |
| `POST /_fake/faults`    | queue a fault (or a list): `{"kind": "status", "status": 503,`    |
|                         | `"retry_after": 2, "times": 3}`; `"times": null` = every call     |
| `DELETE /_fake/faults`  | drop queued faults                                                |
| `GET /_fake/answers`    | the per-address table                                             |
| `POST /_fake/answers`   | add rows: `{"a@b.test": {"state": "risky", "score": 40}}`         |
| `DELETE /_fake/answers` | empty the table                                                   |
| `GET /_fake/calls`      | `{"calls": [...], "count", "min_gap", "max_in_window"}`;          |
|                         | query `endpoint=` (a path) and `window=` (seconds)                |
| `DELETE /_fake/calls`   | forget the calls                                                  |
| `POST /_fake/reset`     | back to the start: settings, counters, faults, table, calls       |

Errors of the control endpoints: 400 `{"message": ...}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
import struct
import time
import types
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from http import HTTPStatus
from typing import Any, ClassVar, Generic, Self, TypeVar, get_args, get_type_hints

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from tests.fakes.calllog import Call, CallLog
from tests.fakes.faults import MARKERS, Fault, FaultPlan, FaultSpecError, JunkKind, draw_delay
from tests.fakes.faults import split_marker as _split_marker
from tests.fakes.verdicts import split_address

CALL = web.RequestKey("fake_call", Call)

_NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class ConfigError(ValueError):
    """A setting that does not exist or has the wrong type."""


@dataclass(slots=True)
class FakeConfig:
    """Settings both fakes have; every one can change while the fake runs."""

    api_key: str = "test-key"
    latency_ms: float = 0.0
    """Delay before every API answer."""
    jitter_ms: float = 0.0
    """Uniform ± jitter on that delay, drawn from a generator seeded with `seed`."""
    seed: int | None = None
    slow_ms: float = 2000.0
    """Extra delay for addresses with the `slow` marker."""
    hang_s: float = 3600.0
    """How long a hang lasts at most (stopping the fake ends it sooner)."""


C = TypeVar("C", bound=FakeConfig)


def with_settings(config: C, settings: Mapping[str, Any]) -> C:
    """A copy of `config` with `settings` applied after checking names and types."""
    hints = get_type_hints(type(config))
    checked: dict[str, Any] = {}
    for name, value in settings.items():
        if name not in hints:
            raise ConfigError(f"unknown setting {name!r}")
        hint = hints[name]
        allowed = get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if isinstance(value, int) and not isinstance(value, bool) and float in allowed:
            value = float(value)  # JSON and callers write 80 for 80.0
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            raise ConfigError(f"setting {name!r} wants {hint}, got {value!r}")
        checked[name] = value
    return replace(config, **checked)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer (orjson, `application/json`)."""
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def retry_after_header(seconds: float) -> str:
    """`Retry-After` in whole seconds, rounded up (RFC 9110 §10.2.3 wants an integer)."""
    return str(max(0, math.ceil(seconds)))


@contextlib.contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that refuses connections: bound by us (so nobody takes it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


class FakeServer(Generic[C]):
    """A local aiohttp server that speaks one provider's API; subclasses add the API routes."""

    provider: ClassVar[str]

    def __init__(self, config: C, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._initial = replace(config)
        self.config = config
        self.host = host
        self._port = port
        self.calls = CallLog()
        self.faults = FaultPlan()
        self.answers: dict[str, dict[str, Any]] = {}
        self._rng = random.Random(config.seed)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.app = self._make_app()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (known once started)."""
        if not self._port:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:41234` (the client adds the API paths)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        """The key the fake accepts."""
        return self.config.api_key

    async def start(self) -> None:
        """Listen; a stopped fake starts again on the same port."""
        if self._runner is not None:
            return
        self._stopping = asyncio.Event()
        self.app = self._make_app()
        # A short shutdown wait: hangs are released by `_stopping`, nothing else lingers.
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening; requests still hanging get their connection reset."""
        self._stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def running(self) -> bool:
        """Whether the fake is listening."""
        return self._runner is not None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- settings, table and faults from Python -------------------------------------------

    def configure(self, **settings: Any) -> None:
        """Change settings (checked by name and type); a new `seed` restarts the jitter sequence."""
        self.config = with_settings(self.config, settings)
        if "seed" in settings:
            self._rng = random.Random(self.config.seed)

    def set_answer(self, email: str, **fields: Any) -> None:
        """Lay these answer fields over whatever the conventions would say for `email`."""
        self.answers[email.strip().lower()] = dict(fields)

    def set_answers(self, table: Mapping[str, Mapping[str, Any]]) -> None:
        """Several `set_answer` at once."""
        for email, row in table.items():
            self.set_answer(email, **row)

    def clear_answers(self) -> None:
        """Empty the per-address table."""
        self.answers.clear()

    def inject(self, fault: Fault, times: int | None = 1) -> None:
        """Answer the next `times` calls (None: every call until cleared) with `fault`."""
        self.faults.add(fault, times)

    def fail(
        self,
        status: int = 500,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """The next `times` calls answer `status` with the provider's error body."""
        self.inject(Fault("status", status, retry_after, message), times)

    def junk(self, kind: JunkKind = "html", *, times: int | None = 1) -> None:
        """The next `times` calls answer 200 with a body that is not the documented JSON."""
        self.inject(Fault("junk", junk=kind), times)

    def drop_connections(self, *, times: int | None = 1) -> None:
        """The next `times` calls get their connection reset (RST) instead of an answer."""
        self.inject(Fault("reset"), times)

    def hang(self, *, times: int | None = 1) -> None:
        """The next `times` calls never get an answer (until `hang_s` or the fake stops)."""
        self.inject(Fault("hang"), times)

    def clear_faults(self) -> None:
        """Drop queued faults."""
        self.faults.clear()

    def reset(self) -> None:
        """Back to the start: settings and counters, faults, table, calls."""
        self.config = replace(self._initial)
        self._rng = random.Random(self.config.seed)
        self.faults.clear()
        self.answers.clear()
        self.calls.clear()
        self._reset_state()

    def _reset_state(self) -> None:
        """Subclasses forget their own counters (rate windows, last call)."""

    # -- the app ----------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        # Bulk uploads of 50,000 addresses are megabytes: far above aiohttp's 1 MiB default.
        app = web.Application(middlewares=[self._log_calls], client_max_size=256 * 1024**2)
        self._add_api_routes(app)
        app.router.add_get("/_fake/config", self._get_config)
        app.router.add_post("/_fake/config", self._post_config)
        app.router.add_get("/_fake/faults", self._get_faults)
        app.router.add_post("/_fake/faults", self._post_faults)
        app.router.add_delete("/_fake/faults", self._delete_faults)
        app.router.add_get("/_fake/answers", self._get_answers)
        app.router.add_post("/_fake/answers", self._post_answers)
        app.router.add_delete("/_fake/answers", self._delete_answers)
        app.router.add_get("/_fake/calls", self._get_calls)
        app.router.add_delete("/_fake/calls", self._delete_calls)
        app.router.add_post("/_fake/reset", self._post_reset)
        return app

    def _add_api_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @web.middleware
    async def _log_calls(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            return await handler(request)
        call = Call(
            provider=self.provider,
            method=request.method,
            endpoint=request.path,
            mono=time.monotonic(),
            wall=time.time(),
            remote=request.remote,
        )
        self.calls.add(call)  # at arrival, so a hanging call is visible while it hangs
        request[CALL] = call
        try:
            try:
                response = await handler(request)
            except web.HTTPException as e:
                # Unknown path or method: the providers' JSON error format, not aiohttp's text.
                allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
                response = self.error_response(e.status, e.reason, allow)
            if call.fault not in ("reset", "hang"):
                call.status = response.status
            return response
        finally:
            call.done_mono = time.monotonic()

    # -- fault injection inside API handlers --------------------------------------------------

    def take_fault(self, email: str | None) -> tuple[Fault | None, bool]:
        """At arrival: (queued fault, else the address's marker fault; whether it is `slow`)."""
        marker = None
        parts = split_address(email) if email else None
        if parts is not None:
            marker, _ = _split_marker(parts[0])
        queued = self.faults.take()
        return (queued if queued is not None else MARKERS.get(marker or "")), marker == "slow"

    async def before_answer(
        self, request: web.Request, fault: Fault | None, slow: bool, extra_s: float = 0.0
    ) -> web.StreamResponse | None:
        """Wait the injected latency, then answer the fault if there is one (else None)."""
        cfg = self.config
        delay = draw_delay(self._rng, cfg.latency_ms, cfg.jitter_ms) + extra_s
        if slow:
            delay += cfg.slow_ms / 1000.0
        call = request[CALL]
        call.delay = delay
        if delay > 0:
            await self._pause(delay)
        if fault is None:
            return None
        call.fault = fault.kind
        if fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = retry_after_header(fault.retry_after)
            return self.error_response(
                fault.status, fault.message or _phrase(fault.status), headers
            )
        if fault.kind == "junk":
            return self._junk_response(fault.junk)
        if fault.kind == "hang":
            await self._pause(cfg.hang_s)
        return _reset_connection(request)

    def lose_answer(self, request: web.Request) -> web.Response | None:
        """After an upload was stored: reset the connection instead of answering, when the
        fake's `lose_upload_answers` says so (None: answer as usual)."""
        remaining = getattr(self.config, "lose_upload_answers", 0)
        if remaining <= 0:
            return None
        self.config.lose_upload_answers = remaining - 1  # type: ignore[attr-defined]
        request[CALL].fault = "reset"
        return _reset_connection(request)

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """The provider's error body; both use `{"message": ...}`."""
        return json_response({"message": message}, status, headers)

    def sample_body(self) -> dict[str, Any]:
        """A normal answer body, which `truncated` junk cuts in half."""
        raise NotImplementedError

    def wrong_shape_body(self) -> Any:
        """Valid JSON that is not the documented shape."""
        raise NotImplementedError

    def _junk_response(self, kind: JunkKind) -> web.Response:
        if kind == "html":
            return web.Response(text=_NGINX_502, content_type="text/html")
        if kind == "wrong_shape":
            return json_response(self.wrong_shape_body())
        if kind == "truncated":
            whole = orjson.dumps(self.sample_body())
            return web.Response(body=whole[: len(whole) // 2], content_type="application/json")
        return web.Response(body=b"", content_type="application/json")

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the fake stops (so teardown never waits on a hang)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # -- control endpoints ------------------------------------------------------------------

    def settings_json(self) -> dict[str, Any]:
        """Current settings, JSON-ready."""
        return asdict(self.config)

    async def _get_config(self, request: web.Request) -> web.Response:
        return json_response(self.settings_json())

    async def _post_config(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        try:
            self.configure(**body)
        except ConfigError as e:
            raise _bad_request(str(e)) from e
        return json_response(self.settings_json())

    async def _get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.faults.pending())

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            body: Any = orjson.loads(await request.read())
            specs = body if isinstance(body, list) else [body]
            queued = [(Fault.from_json(spec), spec.get("times", 1)) for spec in specs]
            for fault, times in queued:
                self.faults.add(fault, times)
        except (orjson.JSONDecodeError, FaultSpecError, AttributeError, TypeError) as e:
            raise _bad_request(f"bad fault: {e}") from e
        return json_response(self.faults.pending())

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return json_response([])

    async def _get_answers(self, request: web.Request) -> web.Response:
        return json_response(self.answers)

    async def _post_answers(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if not all(isinstance(row, dict) for row in body.values()):
            raise _bad_request('answers look like {"a@b.test": {"field": value}}')
        self.set_answers(body)
        return json_response(self.answers)

    async def _delete_answers(self, request: web.Request) -> web.Response:
        self.answers.clear()
        return json_response({})

    async def _get_calls(self, request: web.Request) -> web.Response:
        endpoint = request.query.get("endpoint")
        calls = self.calls.select(endpoint)
        log = CallLog(calls)
        data: dict[str, Any] = {
            "provider": self.provider,
            "count": len(calls),
            "min_gap": log.min_gap(),
            "calls": log.to_json(),
        }
        if "window" in request.query:
            try:
                window = float(request.query["window"])
            except ValueError as e:
                raise _bad_request("window is a number of seconds") from e
            data["max_in_window"] = log.max_in_window(window)
        return json_response(data)

    async def _delete_calls(self, request: web.Request) -> web.Response:
        self.calls.clear()
        return json_response({"count": 0})

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response(self.settings_json())


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _reset_connection(request: web.Request) -> web.Response:
    """Abort the connection with an RST (SO_LINGER 0), as a crashing proxy would."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp drops this answer quietly: the transport is gone.
    return web.Response(status=200)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        body=orjson.dumps({"message": message}), content_type="application/json"
    )


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as e:
        raise _bad_request(f"body is not JSON: {e}") from e
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object")
    return body
