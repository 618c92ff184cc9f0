"""The `emailgate` command: serve · worker · check EMAIL [--context C] · batch FILE · hash-key KEY.

Settings are read here, once, from the environment; nothing else reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import hashlib
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import orjson

from emailgate import __version__
from emailgate import log as logsetup
from emailgate.config import Settings, SettingsError

if TYPE_CHECKING:
    from emailgate.access.keys import KeyRing


SERVE_HELP = """\
Start the HTTP service on EMAILGATE_HOST:EMAILGATE_PORT (default 127.0.0.1:8080) and answer
until SIGTERM or SIGINT. Every setting is an environment variable and none is required: with
none it runs on embedded defaults (local checks only, in-process cache and pacing). What each
does and its default: docs/api.md, "Settings". Read by this command:

{settings}

Signals: SIGTERM or SIGINT stop it gracefully (checks in flight finish, exit 0); SIGHUP re-reads
EMAILGATE_API_KEYS_FILE. Exit status 2: a bad setting or an address it cannot listen on, told
in one line naming the variable.
"""

CHECK_EXIT_CODES = """\
exit status:
  0 accept   the address passes the context's threshold
  1 reject   it does not
  2 usage    a bad argument, an unknown --context or a bad EMAILGATE_* setting
"""


def _settings_list() -> str:
    names = sorted(Settings.variables())
    width = max(len(n) for n in names) + 2
    per_line = max(1, 96 // width)
    rows = [names[i : i + per_line] for i in range(0, len(names), per_line)]
    return "\n".join("  " + "".join(n.ljust(width) for n in row).rstrip() for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="emailgate", description="Real-time email validation for signup forms."
    )
    parser.add_argument("--version", action="version", version=f"emailgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="start the HTTP service (settings: EMAILGATE_* variables)",
        description=SERVE_HELP.format(settings=_settings_list()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker = commands.add_parser(
        "worker",
        help="work batch jobs, no API (beside services with EMAILGATE_JOB_WORKER=off)",
        description="Work the batch jobs of the job store (EMAILGATE_DATABASE_URL or\n"
        "EMAILGATE_DATA_DIR) with the cache and pacing in EMAILGATE_REDIS_URL, until SIGTERM or\n"
        "SIGINT (the job in hand goes back to the store). /metrics and /healthz on\n"
        "EMAILGATE_HOST:EMAILGATE_WORKER_PORT when that is set. Same settings as serve.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument("--nice", type=int, default=0, help="lower its CPU priority by this much")
    worker.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # set by serve's child
    check = commands.add_parser(
        "check",
        help="check one address and print the result JSON",
        description="Run the whole check once (cache, DNS, providers, as the EMAILGATE_*\n"
        "variables configure them) and print the RESULT as JSON on stdout. Log lines go to\n"
        "stderr: warnings only, unless EMAILGATE_LOG_LEVEL is set.",
        epilog=CHECK_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("email")
    check.add_argument("--context", default="signup", help="threshold context (default: signup)")
    batch = commands.add_parser(
        "batch",
        help="verify a list (.csv, .txt, .xlsx): here, or on a running service with --url",
    )
    batch.add_argument("file", type=Path)
    batch.add_argument(
        "--column", help="the email column's name (default: found by name or content)"
    )
    batch.add_argument("--context", default="marketing")
    batch.add_argument("--out", type=Path, help="results CSV (default: standard output)")
    batch.add_argument("--url", help="submit to the emailgate service at this URL instead")
    batch.add_argument("--key", help="client key for --url (a private or test key)")
    hash_key = commands.add_parser("hash-key", help="print the digest of KEY for a keys file")
    hash_key.add_argument("key", help="the client key (use - to read it from stdin)")
    args = parser.parse_args(argv)

    if args.command == "hash-key":
        key = sys.stdin.readline().strip() if args.key == "-" else args.key
        if not key:
            parser.error("the key is empty")
        print(hashlib.sha256(key.encode()).hexdigest())
        return 0

    if args.command == "batch" and args.url:
        return batch_remote(args)

    from emailgate.access import read_settings

    try:
        settings, keys = read_settings(os.environ)
    except SettingsError as e:
        for problem in e.problems:  # one line each, naming the variable
            print(f"emailgate: {problem}", file=sys.stderr)
        return 2
    if args.command == "serve":
        logsetup.setup(settings.log_level)
        return serve(settings, keys)
    if args.command == "worker":
        logsetup.setup(settings.log_level)
        return work(settings, nice=args.nice, parent=args.parent)
    if args.command == "batch":
        logsetup.setup(settings.log_level)
        return batch_local(settings, args)
    # `check` prints its RESULT: info lines (start-up notes, the check line) would only clutter
    # a terminal that shows both streams, so it logs warnings unless asked for more.
    explicit = os.environ.get("EMAILGATE_LOG_LEVEL", "").strip()
    logsetup.setup(settings.log_level if explicit else "warning")
    return asyncio.run(check_once(settings, args.email, args.context))


class ListenError(Exception):
    """The service cannot listen where its settings say."""


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to `host`:`port` (every address the name stands for), before anything
    else starts: a port in use is a one-line error, not a traceback after "ready"."""
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_ADDRCONFIG
        )
    except socket.gaierror as e:
        raise ListenError(f"EMAILGATE_HOST: cannot listen on {host!r}: {e.strerror}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as e:
        for sock in sockets:
            sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if e.errno == errno.EADDRINUSE:
            raise ListenError(
                f"EMAILGATE_PORT: {where} is already in use (another emailgate?); "
                "stop it or choose another EMAILGATE_PORT"
            ) from None
        raise ListenError(
            f"EMAILGATE_HOST/EMAILGATE_PORT: cannot listen on {where}: {e.strerror}"
        ) from None
    return sockets


def batch_local(settings: Settings, args: argparse.Namespace) -> int:
    """`emailgate batch FILE`: the job runs in this process; exit 0 when processed."""
    from emailgate.jobs.cli import CliError, output, run_local
    from emailgate.services import open_services

    async def run(out: IO[bytes]) -> None:
        async with open_services(settings) as services:
            await run_local(
                settings, args.file, verifier=services.verifier, metrics=services.metrics,
                chain=services.chain, bulk=services.bulk.providers if services.bulk else (),
                column=args.column, context=args.context, out=out,
            )  # fmt: skip

    try:
        with output(args.out) as out:
            asyncio.run(run(out))
    except CliError as e:
        print(f"emailgate: {e}", file=sys.stderr)
        return 2
    return 0


def batch_remote(args: argparse.Namespace) -> int:
    """`emailgate batch FILE --url URL --key KEY`: submitted to a running service."""
    import aiohttp

    from emailgate.jobs.cli import CliError, output, run_remote

    key = args.key
    try:
        with output(args.out) as out:
            asyncio.run(run_remote(args.url, key, args.file, column=args.column,
                                   context=args.context, out=out))  # fmt: skip
    except CliError as e:
        print(f"emailgate: {e}", file=sys.stderr)
        return 2
    except (OSError, aiohttp.ClientError) as e:
        print(f"emailgate: cannot reach {args.url}: {e}", file=sys.stderr)
        return 2
    return 0


def serve(settings: Settings, keys: KeyRing | None = None) -> int:
    """Run the HTTP service until SIGTERM or SIGINT, then shut down gracefully."""
    from emailgate.app import create_app
    from emailgate.http import server
    from emailgate.http.limits import server_options

    try:
        sockets = listen(settings.host, settings.port)
    except ListenError as e:
        print(f"emailgate: {e}", file=sys.stderr)
        return 2
    server.run(
        create_app(settings, keys=keys, worker_env=os.environ),
        sockets=sockets,
        shutdown_timeout=settings.shutdown_timeout_s,
        access_log=None,  # one JSON line per check is logged by the pipeline, addresses hashed
        # Header sizes and slow clients (http/limits.py); the body limit is the app's own.
        **server_options(),
    )
    return 0


def work(settings: Settings, *, nice: int = 0, parent: int | None = None) -> int:
    """`emailgate worker`: work jobs until SIGTERM or SIGINT; exit 0."""
    from emailgate.app import create_worker_app
    from emailgate.http import server
    from emailgate.jobs.child import tie_to_parent

    if parent is not None and not tie_to_parent(parent):
        return 0  # the service that started it is gone already
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    sockets: list[socket.socket] = []
    if settings.worker_port:
        try:
            sockets = listen(settings.host, settings.worker_port)
        except ListenError as e:
            print(f"emailgate: {str(e).replace('EMAILGATE_PORT', 'EMAILGATE_WORKER_PORT')}",
                  file=sys.stderr)  # fmt: skip
            return 2
    server.run(
        create_worker_app(settings), sockets=sockets,
        shutdown_timeout=settings.shutdown_timeout_s, access_log=None,
    )  # fmt: skip
    return 0


async def check_once(settings: Settings, email: str, context: str) -> int:
    """Run the pipeline once, print RESULT as JSON; exit 0 on accept, 1 on reject, 2 on misuse."""
    from emailgate.services import open_services
    from emailgate.verify.decision import UnknownContext

    async with open_services(settings) as services:
        try:
            result = await services.verifier.check(email, context)
        except UnknownContext as e:
            print(f"emailgate: {e}", file=sys.stderr)
            return 2
    sys.stdout.write(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if result.decision.value == "accept" else 1


if __name__ == "__main__":
    sys.exit(main())
