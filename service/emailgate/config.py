"""Settings from the environment: parsed once at start, every problem reported at once.

Each setting is declared once, as a field of `Settings`; docs/api.md ("Settings") says what
each one does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from emailgate.rate import Rate, RateSyntaxError
from emailgate.verify.result import ACCOUNTS, BULK_PROVIDERS, PROVIDERS

PROVIDER_NAMES = tuple(p.value for p in PROVIDERS)
BATCH_PROVIDER_NAMES = tuple(p.value for p in BULK_PROVIDERS)
ACCOUNT_NAMES = tuple(p.value for p in ACCOUNTS)
LOG_LEVELS = ("debug", "info", "warning", "error")
JOB_WORKERS = ("inline", "process", "off")
"""Where a replica works batch jobs: on its serving event loop, in a child process (`emailgate
worker`, started by `emailgate serve` at a lower CPU priority), or not at all (docs/batch.md)."""
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
    # The text after the last "@" is host[:port] as written (even when the port is bad).
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:****@{host}"))


def _read(how: str, **options: Any) -> dict[str, Any]:
    """A setting's field metadata: the `_Reader` method that parses its variable."""
    return {"read": how, "options": options}


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told, each setting declared here once: its field is read
    from `EMAILGATE_<NAME>` by the reader its metadata names; the default is the embedded one.
    docs/api.md ("Settings") describes each of them."""

    host: str = field(default="127.0.0.1", metadata=_read("text"))
    port: int = field(default=8080, metadata=_read("integer", low=1, high=65535))
    deadline_ms: int = field(default=1500, metadata=_read("integer", low=50, high=60_000))
    thresholds: Mapping[str, int] = field(
        default_factory=lambda: {"signup": 30, "marketing": 50}, metadata=_read("thresholds")
    )
    providers: tuple[str, ...] = field(default=PROVIDER_NAMES, metadata=_read("providers"))
    listcleanser_api_key: Secret | None = field(default=None, metadata=_read("secret"))
    listcleanser_url: str = field(default="https://api.listcleanser.com", metadata=_read("url"))
    listcleanser_rate: Rate = field(default=Rate(200, 60.0), metadata=_read("rate"))
    cleanmylist_api_key: Secret | None = field(default=None, metadata=_read("secret"))
    cleanmylist_url: str = field(default="https://app.cleanmylist.email", metadata=_read("url"))
    cleanmylist_interval_ms: int = field(default=300, metadata=_read("integer", low=1, high=60_000))
    redis_url: Secret | None = field(default=None, metadata=_read("redis_url"))
    dns_servers: tuple[str, ...] = field(default=(), metadata=_read("dns_servers"))
    api_keys_file: Path | None = field(default=None, metadata=_read("keys_file"))
    trusted_proxies: tuple[IPNetwork, ...] = field(default=(), metadata=_read("networks"))
    log_level: str = field(default="info", metadata=_read("choice", options=LOG_LEVELS))
    # Bulk providers behind batch jobs (docs/bulk-providers.md).
    batch_providers: tuple[str, ...] = field(
        default=BATCH_PROVIDER_NAMES, metadata=_read("providers", known=BATCH_PROVIDER_NAMES)
    )
    listcleaner_url: str = field(default="https://api.listcleaner.net", metadata=_read("url"))
    listcleaner_user_email: Secret | None = field(default=None, metadata=_read("secret"))
    listcleaner_api_key: Secret | None = field(default=None, metadata=_read("secret"))
    emailconsul_url: str = field(default="https://api.emailconsul.com", metadata=_read("url"))
    emailconsul_api_key: Secret | None = field(default=None, metadata=_read("secret"))
    emailconsul_webhook_url: str | None = field(default=None, metadata=_read("url"))
    """Where EmailConsul reaches this service's `/hooks/emailconsul` (docs/batch.md)."""
    # Contact enrichment (docs/enrich.md).
    cleanlist_api_key: Secret | None = field(default=None, metadata=_read("secret"))
    cleanlist_url: str = field(
        default="https://api.cleanlist.ai/api/v1/public", metadata=_read("url")
    )
    cleanlist_rate: Rate = field(default=Rate(60, 60.0), metadata=_read("rate"))
    cleanlist_webhook_url: str | None = field(default=None, metadata=_read("url"))
    hash_key: Secret | None = field(default=None, metadata=_read("secret", min_length=16))
    replicas: int = field(default=1, metadata=_read("integer", low=1, high=1000))
    cache_max_entries: int = field(
        default=100_000, metadata=_read("integer", low=100, high=50_000_000)
    )
    open_rate: Rate = field(default=Rate(200, 60.0), metadata=_read("rate"))
    public_credits_per_hour: int = field(
        default=20, metadata=_read("integer", low=0, high=1_000_000)
    )
    demo: bool = field(default=True, metadata=_read("boolean"))
    shutdown_timeout_s: float = field(default=10.0, metadata=_read("number", low=0, high=600))
    batch_realtime_max: int = field(default=500, metadata=_read("integer", low=0, high=1_000_000))
    # Batch jobs (docs/batch.md).
    data_dir: Path = field(default=Path("data"), metadata=_read("directory"))
    database_url: Secret | None = field(default=None, metadata=_read("database_url"))
    batch_max_rows: int = field(
        default=1_000_000, metadata=_read("integer", low=1, high=100_000_000)
    )
    batch_max_bytes: int = field(
        default=104_857_600, metadata=_read("integer", low=1024, high=10 * 1024**3)
    )
    job_retention: float = field(default=7 * 86400.0, metadata=_read("duration"))
    """Seconds (the variable says `7d`, `12h`, `30m` or `90s`)."""
    webhook_secret: Secret | None = field(default=None, metadata=_read("secret", min_length=16))
    webhook_allow_private: bool = field(default=False, metadata=_read("boolean"))
    batch_upload_rate: Rate = field(default=Rate(6, 60.0), metadata=_read("rate"))
    job_lease_s: float = field(default=30.0, metadata=_read("number", low=1.0, high=3600.0))
    job_worker: str = field(default="inline", metadata=_read("choice", options=JOB_WORKERS))
    worker_port: int = field(default=0, metadata=_read("integer", low=0, high=65535))
    """`emailgate worker`'s /metrics and /healthz on EMAILGATE_HOST (0: none)."""

    @property
    def deadline(self) -> float:
        """The verify budget in seconds."""
        return self.deadline_ms / 1000

    @property
    def active_providers(self) -> tuple[str, ...]:
        """The chain order, leaving out providers without a key."""
        return tuple(p for p in self.providers if getattr(self, f"{p}_api_key") is not None)

    @property
    def active_batch_providers(self) -> tuple[str, ...]:
        """The bulk providers' order, leaving out those without a key."""
        return tuple(p for p in self.batch_providers if getattr(self, f"{p}_api_key") is not None)

    def embedded_defaults(self) -> list[str]:
        """Names of the settings left at their embedded default (for the start-up log)."""
        default = Settings()
        return [f.name for f in fields(self) if getattr(self, f.name) == getattr(default, f.name)]

    @classmethod
    def variables(cls) -> list[str]:
        """Every variable the service reads, `EMAILGATE_HOST` first."""
        return [_Reader.PREFIX + f.name.upper() for f in fields(cls)]

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
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.name.upper()
            raw = reader.raw(name)
            if raw is not None:  # unset or blank: the field's default
                values[f.name] = getattr(reader, f.metadata["read"])(
                    name, raw, **f.metadata["options"]
                )
        if (values.get("listcleaner_user_email") is None) != (
            values.get("listcleaner_api_key") is None
        ):
            # Listcleaner wants both headers on every call: one alone is a half-done setup.
            reader.problems.append(
                "EMAILGATE_LISTCLEANER_USER_EMAIL and EMAILGATE_LISTCLEANER_API_KEY: "
                "set both or neither"
            )
        if values.get("emailconsul_webhook_url") and not values.get("webhook_secret"):
            # Each list's webhook address is signed with it: without, anyone could wake jobs.
            reader.problems.append(
                "EMAILGATE_EMAILCONSUL_WEBHOOK_URL needs EMAILGATE_WEBHOOK_SECRET "
                "(it signs each list's webhook address)"
            )
        if values.get("job_worker") == "process" and values.get("redis_url") is None:
            # The worker's verdicts must reach the service's cache, and its provider slots must
            # come from the pacers that keep signups first: both are shared only through Redis.
            reader.problems.append(
                "EMAILGATE_JOB_WORKER=process needs EMAILGATE_REDIS_URL (the worker shares the "
                "cache and the provider pacing with the service through Redis)"
            )
        reader.unknown_names({f.name.upper() for f in fields(cls)})
        if reader.problems:
            raise SettingsError(reader.problems)
        return cls(**values)


class _Reader:
    """Parses one variable at a time (only those set); collects problems instead of stopping
    at the first. Every parser takes the setting's name (for the problem) and its raw text."""

    PREFIX = "EMAILGATE_"

    def __init__(
        self,
        env: Mapping[str, str],
        check_keys_file: Callable[[Path], Sequence[str]] | None = None,
    ) -> None:
        self.env = env
        self.check_keys_file = check_keys_file
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(self.PREFIX + name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _bad(self, name: str, why: str) -> None:
        self.problems.append(f"{self.PREFIX}{name}: {why}")

    def unknown_names(self, known: set[str]) -> None:
        """A misspelt setting is silently ignored elsewhere; here it is a problem."""
        for key in sorted(self.env):
            if key.startswith(self.PREFIX) and key[len(self.PREFIX) :] not in known:
                self.problems.append(f"{key}: unknown setting (misspelt?)")

    def text(self, name: str, raw: str) -> str:
        return raw

    def integer(self, name: str, raw: str, *, low: int, high: int) -> int | None:
        try:
            value = int(raw)
        except ValueError:
            self._bad(name, f"{raw!r} is not a whole number")
            return None
        if not low <= value <= high:
            self._bad(name, f"{value} is outside {low}..{high}")
            return None
        return value

    def number(self, name: str, raw: str, *, low: float, high: float) -> float | None:
        try:
            value = float(raw)
        except ValueError:
            self._bad(name, f"{raw!r} is not a number")
            return None
        if not low <= value <= high:
            self._bad(name, f"{value:g} is outside {low:g}..{high:g}")
            return None
        return value

    def boolean(self, name: str, raw: str) -> bool | None:
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        self._bad(name, f"{raw!r} is not one of 1/0, true/false, yes/no, on/off")
        return None

    def choice(self, name: str, raw: str, *, options: tuple[str, ...]) -> str | None:
        if raw.lower() not in options:
            self._bad(name, f"{raw!r} is not one of {', '.join(options)}")
            return None
        return raw.lower()

    def secret(self, name: str, raw: str, *, min_length: int = 1) -> Secret | None:
        if len(raw) < min_length:
            # Never echo the value: it is a secret even when it is wrong.
            self._bad(name, f"must be at least {min_length} characters long")
            return None
        return Secret(raw)

    def url(self, name: str, raw: str) -> str | None:
        parts = urlsplit(raw)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            self._bad(name, f"{redact_url(raw)!r} is not an http(s) URL")
            return None
        if not _port_ok(parts):
            self._bad(name, f"{redact_url(raw)!r}: the port is not a number in 1..65535")
            return None
        return raw.rstrip("/")

    def redis_url(self, name: str, raw: str) -> Secret | None:
        parts = urlsplit(raw)
        if parts.scheme not in {"redis", "rediss", "unix"}:
            self._bad(name, f"{redact_url(raw)!r} is not a redis://, rediss:// or unix:// URL")
            return None
        if not _port_ok(parts):
            self._bad(name, f"{redact_url(raw)!r}: the port is not a number in 1..65535")
            return None
        return Secret(raw)

    def directory(self, name: str, raw: str) -> Path:
        return Path(raw)

    def database_url(self, name: str, raw: str) -> Secret | None:
        if urlsplit(raw).scheme not in {"postgres", "postgresql", "postgresql+asyncpg"}:
            self._bad(name, f"{redact_url(raw)!r} is not a postgresql:// URL")
            return None
        return Secret(raw)

    def duration(self, name: str, raw: str) -> float | None:
        units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
        try:
            value = float(raw[:-1]) * units[raw[-1:].lower()]
        except (KeyError, ValueError):
            self._bad(name, f"{raw!r} is not a duration like '7d', '12h', '30m' or '90s'")
            return None
        if value <= 0:
            self._bad(name, f"{raw!r} must be positive")
            return None
        return value

    def rate(self, name: str, raw: str) -> Rate | None:
        try:
            return Rate.parse(raw)
        except RateSyntaxError as e:
            self._bad(name, str(e))
            return None

    def thresholds(self, name: str, raw: str) -> dict[str, int]:
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
        self, name: str, raw: str, *, known: tuple[str, ...] = PROVIDER_NAMES
    ) -> tuple[str, ...] | None:
        names = tuple(p.strip().lower() for p in raw.split(",") if p.strip())
        unknown = [p for p in names if p not in known]
        if unknown:
            self._bad(name, f"unknown provider(s) {', '.join(unknown)}; known: {known}")
            return None
        if len(set(names)) != len(names):
            self._bad(name, "a provider is listed twice")
        return names

    def dns_servers(self, name: str, raw: str) -> tuple[str, ...]:
        servers = []
        for item in raw.split(","):
            item = item.strip()
            try:
                host, port = _split_host_port(item)
            except ValueError:
                self._bad(name, f"{item!r}: the port is not a number (host:port, [v6]:port)")
                continue
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

    def path(self, name: str, raw: str) -> Path | None:
        path = Path(raw)
        if not path.is_file():
            self._bad(name, f"{raw!r} is not a readable file")
            return None
        return path

    def keys_file(self, name: str, raw: str) -> Path | None:
        """A readable keys file whose every entry is valid (problems listed with the others)."""
        path = self.path(name, raw)
        if path is None or self.check_keys_file is None:
            return path
        for problem in self.check_keys_file(path):
            self._bad(name, f"{path}: {problem}")
        return path

    def networks(self, name: str, raw: str) -> tuple[IPNetwork, ...]:
        nets: list[IPNetwork] = []
        for item in raw.split(","):
            try:
                nets.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                self._bad(name, f"{item.strip()!r} is not an IP address or CIDR")
        return tuple(nets)


def _split_host_port(item: str) -> tuple[str, int | None]:
    """`1.2.3.4:53`, `[::1]:53`, `1.2.3.4` or `::1` into host and optional port; ValueError
    when a port is there but is not a number (`[::1]:x53`, `1.2.3.4:`)."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(item)
        return host, _port_number(rest[1:])
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, _port_number(port)
    return item, None


def _port_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    return int(text)


def _port_ok(parts: SplitResult) -> bool:
    """The URL's port, if it has one, is a number in 1..65535 (urlsplit checks only on use)."""
    try:
        port = parts.port
    except ValueError:
        return False
    return port is None or port >= 1
