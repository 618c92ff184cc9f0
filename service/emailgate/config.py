"""Settings from the environment: parsed once in `__main__`, every problem reported at once.

The contract's table (CONTRACT.md "Settings") plus a few of our own, documented in the README:

    EMAILGATE_HASH_KEY                  key for the hashes of addresses in cache keys and logs
    EMAILGATE_REPLICAS                  fleet size: in-process pacing uses rate / replicas
    EMAILGATE_CACHE_MAX_ENTRIES         bound of the in-memory cache
    EMAILGATE_OPEN_RATE                 per client IP limit when no keys file is set
    EMAILGATE_PUBLIC_CREDITS_PER_HOUR   provider-backed answers per client IP per hour (public keys)
    EMAILGATE_DEMO                      serve the /demo page (1 or 0)
    EMAILGATE_SHUTDOWN_TIMEOUT_S        grace for in-flight checks on SIGTERM
    EMAILGATE_BATCH_REALTIME_MAX        jobs with at most this many billable addresses use the
                                        real-time chain, not a bulk provider
                                        (docs/bulk-providers.md)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from emailgate.rate import Rate, RateSyntaxError

PROVIDER_NAMES = ("listcleanser", "cleanmylist")
BATCH_PROVIDER_NAMES = ("listcleanser", "listcleaner", "emailconsul")
LOG_LEVELS = ("debug", "info", "warning", "error")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(Exception):
    """One or more settings are wrong; `problems` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class Secret:
    """A value that must never be printed: `repr` and `str` show only that it is set."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:****@{host}"))


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told; defaults are the embedded ones of the contract."""

    host: str = "127.0.0.1"
    port: int = 8080
    deadline_ms: int = 1500
    thresholds: Mapping[str, int] = field(default_factory=lambda: {"signup": 30, "marketing": 50})
    providers: tuple[str, ...] = PROVIDER_NAMES
    listcleanser_api_key: Secret | None = None
    listcleanser_url: str = "https://api.listcleanser.com"
    listcleanser_rate: Rate = Rate(200, 60.0)  # noqa: RUF009 — Rate is frozen
    cleanmylist_api_key: Secret | None = None
    cleanmylist_url: str = "https://app.cleanmylist.email"
    cleanmylist_interval_ms: int = 300
    redis_url: Secret | None = None
    dns_servers: tuple[str, ...] = ()
    api_keys_file: Path | None = None
    trusted_proxies: tuple[IPNetwork, ...] = ()
    log_level: str = "info"
    # Bulk providers behind batch jobs (docs/bulk-providers.md).
    batch_providers: tuple[str, ...] = BATCH_PROVIDER_NAMES
    listcleaner_url: str = "https://api.listcleaner.net"
    listcleaner_user_email: Secret | None = None
    listcleaner_api_key: Secret | None = None
    emailconsul_url: str = "https://api.emailconsul.com"
    emailconsul_api_key: Secret | None = None
    # Ours, beyond the contract's table.
    hash_key: Secret | None = None
    replicas: int = 1
    cache_max_entries: int = 100_000
    open_rate: Rate = Rate(200, 60.0)  # noqa: RUF009 — Rate is frozen
    public_credits_per_hour: int = 20
    demo: bool = True
    shutdown_timeout_s: float = 10.0
    batch_realtime_max: int = 500

    @property
    def deadline(self) -> float:
        """The verify budget in seconds."""
        return self.deadline_ms / 1000

    @property
    def active_providers(self) -> tuple[str, ...]:
        """The chain order, leaving out providers without a key."""
        keys = {"listcleanser": self.listcleanser_api_key, "cleanmylist": self.cleanmylist_api_key}
        return tuple(p for p in self.providers if keys[p] is not None)

    @property
    def active_batch_providers(self) -> tuple[str, ...]:
        """The bulk providers' order, leaving out those without a key."""
        keys = {
            "listcleanser": self.listcleanser_api_key,
            "listcleaner": self.listcleaner_api_key,
            "emailconsul": self.emailconsul_api_key,
        }
        return tuple(p for p in self.batch_providers if keys[p] is not None)

    def embedded_defaults(self) -> list[str]:
        """Names of the settings left at their embedded default (for the start-up log)."""
        default = Settings()
        return [f.name for f in fields(self) if getattr(self, f.name) == getattr(default, f.name)]

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        check_keys_file: Callable[[Path], Sequence[str]] | None = None,
    ) -> Settings:
        """Read every EMAILGATE_* setting; raise SettingsError listing all problems.

        `check_keys_file` reads the client keys file and returns its problems (the access
        layer owns that format: `access.read_settings`); without it the file need only exist.
        """
        reader = _Reader(env, check_keys_file)
        values: dict[str, Any] = {
            "host": reader.text("HOST", "127.0.0.1"),
            "port": reader.integer("PORT", 8080, low=1, high=65535),
            "deadline_ms": reader.integer("DEADLINE_MS", 1500, low=50, high=60_000),
            "thresholds": reader.thresholds("THRESHOLDS", "signup=30,marketing=50"),
            "providers": reader.providers("PROVIDERS", ",".join(PROVIDER_NAMES)),
            "listcleanser_api_key": reader.secret("LISTCLEANSER_API_KEY"),
            "listcleanser_url": reader.url("LISTCLEANSER_URL", "https://api.listcleanser.com"),
            "listcleanser_rate": reader.rate("LISTCLEANSER_RATE", "200/60s"),
            "cleanmylist_api_key": reader.secret("CLEANMYLIST_API_KEY"),
            "cleanmylist_url": reader.url("CLEANMYLIST_URL", "https://app.cleanmylist.email"),
            "cleanmylist_interval_ms": reader.integer(
                "CLEANMYLIST_INTERVAL_MS", 300, low=1, high=60_000
            ),
            "redis_url": reader.redis_url("REDIS_URL"),
            "dns_servers": reader.dns_servers("DNS_SERVERS"),
            "api_keys_file": reader.keys_file("API_KEYS_FILE"),
            "trusted_proxies": reader.networks("TRUSTED_PROXIES"),
            "log_level": reader.choice("LOG_LEVEL", "info", LOG_LEVELS),
            "batch_providers": reader.providers(
                "BATCH_PROVIDERS", ",".join(BATCH_PROVIDER_NAMES), known=BATCH_PROVIDER_NAMES
            ),
            "listcleaner_url": reader.url("LISTCLEANER_URL", "https://api.listcleaner.net"),
            "listcleaner_user_email": reader.secret("LISTCLEANER_USER_EMAIL"),
            "listcleaner_api_key": reader.secret("LISTCLEANER_API_KEY"),
            "emailconsul_url": reader.url("EMAILCONSUL_URL", "https://api.emailconsul.com"),
            "emailconsul_api_key": reader.secret("EMAILCONSUL_API_KEY"),
            "hash_key": reader.secret("HASH_KEY", min_length=16),
            "replicas": reader.integer("REPLICAS", 1, low=1, high=1000),
            "cache_max_entries": reader.integer(
                "CACHE_MAX_ENTRIES", 100_000, low=100, high=50_000_000
            ),
            "open_rate": reader.rate("OPEN_RATE", "200/60s"),
            "public_credits_per_hour": reader.integer(
                "PUBLIC_CREDITS_PER_HOUR", 20, low=0, high=1_000_000
            ),
            "demo": reader.boolean("DEMO", True),
            "shutdown_timeout_s": reader.number("SHUTDOWN_TIMEOUT_S", 10.0, low=0, high=600),
            "batch_realtime_max": reader.integer("BATCH_REALTIME_MAX", 500, low=0, high=1_000_000),
        }
        if (values["listcleaner_user_email"] is None) != (values["listcleaner_api_key"] is None):
            # Listcleaner wants both headers on every call: one alone is a half-done setup.
            reader.problems.append(
                "EMAILGATE_LISTCLEANER_USER_EMAIL and EMAILGATE_LISTCLEANER_API_KEY: "
                "set both or neither"
            )
        reader.unknown_names()
        if reader.problems:
            raise SettingsError(reader.problems)
        return cls(**values)


class _Reader:
    """Collects problems instead of stopping at the first."""

    PREFIX = "EMAILGATE_"
    KNOWN = frozenset(
        {
            "HOST", "PORT", "DEADLINE_MS", "THRESHOLDS", "PROVIDERS", "LISTCLEANSER_API_KEY",
            "LISTCLEANSER_URL", "LISTCLEANSER_RATE", "CLEANMYLIST_API_KEY", "CLEANMYLIST_URL",
            "CLEANMYLIST_INTERVAL_MS", "REDIS_URL", "DNS_SERVERS", "API_KEYS_FILE",
            "TRUSTED_PROXIES", "LOG_LEVEL", "HASH_KEY", "REPLICAS", "CACHE_MAX_ENTRIES",
            "OPEN_RATE", "PUBLIC_CREDITS_PER_HOUR", "DEMO", "SHUTDOWN_TIMEOUT_S",
            "BATCH_PROVIDERS", "LISTCLEANER_URL", "LISTCLEANER_USER_EMAIL", "LISTCLEANER_API_KEY",
            "EMAILCONSUL_URL", "EMAILCONSUL_API_KEY", "BATCH_REALTIME_MAX",
        }
    )  # fmt: skip

    def __init__(
        self,
        env: Mapping[str, str],
        check_keys_file: Callable[[Path], Sequence[str]] | None = None,
    ) -> None:
        self.env = env
        self.check_keys_file = check_keys_file
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self.env.get(self.PREFIX + name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _bad(self, name: str, why: str) -> None:
        self.problems.append(f"{self.PREFIX}{name}: {why}")

    def unknown_names(self) -> None:
        """A misspelt setting is silently ignored elsewhere; here it is a problem."""
        for key in sorted(self.env):
            if key.startswith(self.PREFIX) and key[len(self.PREFIX) :] not in self.KNOWN:
                self.problems.append(f"{key}: unknown setting (misspelt?)")

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self._bad(name, f"{raw!r} is not a whole number")
            return default
        if not low <= value <= high:
            self._bad(name, f"{value} is outside {low}..{high}")
            return default
        return value

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self._bad(name, f"{raw!r} is not a number")
            return default
        if not low <= value <= high:
            self._bad(name, f"{value:g} is outside {low:g}..{high:g}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        self._bad(name, f"{raw!r} is not one of 1/0, true/false, yes/no, on/off")
        return default

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() not in options:
            self._bad(name, f"{raw!r} is not one of {', '.join(options)}")
            return default
        return raw.lower()

    def secret(self, name: str, *, min_length: int = 1) -> Secret | None:
        raw = self._raw(name)
        if raw is None:
            return None
        if len(raw) < min_length:
            # Never echo the value: it is a secret even when it is wrong.
            self._bad(name, f"must be at least {min_length} characters long")
            return None
        return Secret(raw)

    def url(self, name: str, default: str) -> str:
        raw = self._raw(name) or default
        parts = urlsplit(raw)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            self._bad(name, f"{redact_url(raw)!r} is not an http(s) URL")
            return default
        return raw.rstrip("/")

    def redis_url(self, name: str) -> Secret | None:
        raw = self._raw(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in {"redis", "rediss", "unix"}:
            self._bad(name, f"{redact_url(raw)!r} is not a redis://, rediss:// or unix:// URL")
            return None
        return Secret(raw)

    def rate(self, name: str, default: str) -> Rate:
        raw = self._raw(name) or default
        try:
            return Rate.parse(raw)
        except RateSyntaxError as e:
            self._bad(name, str(e))
            return Rate.parse(default)

    def thresholds(self, name: str, default: str) -> dict[str, int]:
        raw = self._raw(name) or default
        result: dict[str, int] = {}
        before = len(self.problems)
        for item in raw.split(","):
            context, sep, number = item.strip().partition("=")
            context = context.strip()
            if not sep or not context.replace("_", "").replace("-", "").isalnum():
                self._bad(name, f"{item.strip()!r} is not context=threshold")
                continue
            try:
                threshold = int(number)
            except ValueError:
                self._bad(name, f"{item.strip()!r}: threshold is not a whole number")
                continue
            if not 0 <= threshold <= 100:
                self._bad(name, f"{item.strip()!r}: threshold is outside 0..100")
                continue
            if context in result:
                self._bad(name, f"context {context!r} is given twice")
            result[context] = threshold
        if "signup" not in result and len(self.problems) == before:
            self._bad(name, "the default context 'signup' must have a threshold")
        return result

    def providers(
        self, name: str, default: str, known: tuple[str, ...] = PROVIDER_NAMES
    ) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            raw = default
        names = tuple(p.strip().lower() for p in raw.split(",") if p.strip())
        unknown = [p for p in names if p not in known]
        if unknown:
            self._bad(name, f"unknown provider(s) {', '.join(unknown)}; known: {known}")
            return known
        if len(set(names)) != len(names):
            self._bad(name, "a provider is listed twice")
        return names

    def dns_servers(self, name: str) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        servers = []
        for item in raw.split(","):
            item = item.strip()
            host, port = _split_host_port(item)
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                self._bad(name, f"{item!r}: name servers are IP addresses (host:port)")
                continue
            if port is not None and not 1 <= port <= 65535:
                self._bad(name, f"{item!r}: port outside 1..65535")
                continue
            if port is None:
                servers.append(str(ip))
            else:
                servers.append(f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}")
        return tuple(servers)

    def path(self, name: str) -> Path | None:
        raw = self._raw(name)
        if raw is None:
            return None
        path = Path(raw)
        if not path.is_file():
            self._bad(name, f"{raw!r} is not a readable file")
            return None
        return path

    def keys_file(self, name: str) -> Path | None:
        """A readable keys file whose every entry is valid (problems listed with the others)."""
        path = self.path(name)
        if path is None or self.check_keys_file is None:
            return path
        for problem in self.check_keys_file(path):
            self._bad(name, f"{path}: {problem}")
        return path

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        nets: list[IPNetwork] = []
        for item in raw.split(","):
            try:
                nets.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                self._bad(name, f"{item.strip()!r} is not an IP address or CIDR")
        return tuple(nets)


def _split_host_port(item: str) -> tuple[str, int | None]:
    """`1.2.3.4:53`, `[::1]:53`, `1.2.3.4` or `::1` into host and optional port."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, int(port) if port.isdigit() else -1
    return item, None
