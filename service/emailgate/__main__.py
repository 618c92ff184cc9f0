"""The `emailgate` command: serve · check EMAIL [--context C] · hash-key KEY.

Settings are read here, once, from the environment; nothing else reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from emailgate import __version__
from emailgate import log as logsetup
from emailgate.config import Settings, SettingsError

if TYPE_CHECKING:
    from emailgate.access.keys import KeyRing


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="emailgate", description="Real-time email validation for signup forms."
    )
    parser.add_argument("--version", action="version", version=f"emailgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="start the HTTP service (settings: EMAILGATE_* variables)")
    check = commands.add_parser("check", help="check one address and print the result JSON")
    check.add_argument("email")
    check.add_argument("--context", default="signup")
    hash_key = commands.add_parser("hash-key", help="print the digest of KEY for a keys file")
    hash_key.add_argument("key", help="the client key (use - to read it from stdin)")
    args = parser.parse_args(argv)

    if args.command == "hash-key":
        key = sys.stdin.readline().strip() if args.key == "-" else args.key
        if not key:
            parser.error("the key is empty")
        print(hashlib.sha256(key.encode()).hexdigest())
        return 0

    from emailgate.access import read_settings

    try:
        settings, keys = read_settings(os.environ)
    except SettingsError as e:
        print(f"emailgate: {e}", file=sys.stderr)
        return 2
    logsetup.setup(settings.log_level)
    if args.command == "serve":
        return serve(settings, keys)
    return asyncio.run(check_once(settings, args.email, args.context))


def serve(settings: Settings, keys: KeyRing | None = None) -> int:
    """Run the HTTP service until SIGTERM or SIGINT, then shut down gracefully."""
    from emailgate.app import create_app
    from emailgate.http import server
    from emailgate.http.limits import server_options

    server.run(
        create_app(settings, keys=keys),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout_s,
        access_log=None,  # one JSON line per check is logged by the pipeline, addresses hashed
        # Header sizes and slow clients (http/limits.py); the body limit is the app's own.
        **server_options(),
    )
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
