"""Settings: every row of CONTRACT.md's table parsed, every problem reported at once."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from emailgate.config import Secret, Settings, SettingsError, redact_url
from emailgate.rate import Rate


def test_no_settings_gives_the_embedded_defaults() -> None:
    """An empty environment yields the contract's defaults."""
    s = Settings.from_env({})
    assert (s.host, s.port, s.deadline_ms) == ("127.0.0.1", 8080, 1500)
    assert dict(s.thresholds) == {"signup": 30, "marketing": 50}
    assert s.providers == ("listcleanser", "cleanmylist")
    assert s.active_providers == ()  # no keys: local checks only
    assert s.listcleanser_url == "https://api.listcleanser.com"
    assert s.cleanmylist_url == "https://app.cleanmylist.email"
    assert s.listcleanser_rate == Rate(200, 60.0)
    assert s.cleanmylist_interval_ms == 300
    assert s.redis_url is None and s.api_keys_file is None and s.dns_servers == ()
    assert s.log_level == "info"
    assert s == Settings()


def test_every_setting_is_read(tmp_path: Path) -> None:
    """Each variable of the table lands in its field, parsed."""
    keys = tmp_path / "keys.toml"
    keys.write_text("")
    s = Settings.from_env(
        {
            "EMAILGATE_HOST": "0.0.0.0",
            "EMAILGATE_PORT": "9000",
            "EMAILGATE_DEADLINE_MS": "800",
            "EMAILGATE_THRESHOLDS": "signup=25, marketing=60, checkout=40",
            "EMAILGATE_PROVIDERS": "cleanmylist,listcleanser",
            "EMAILGATE_LISTCLEANSER_API_KEY": "lc-secret",
            "EMAILGATE_LISTCLEANSER_URL": "http://127.0.0.1:9001/",
            "EMAILGATE_LISTCLEANSER_RATE": "100/30s",
            "EMAILGATE_CLEANMYLIST_API_KEY": "cml-secret",
            "EMAILGATE_CLEANMYLIST_URL": "http://127.0.0.1:9002",
            "EMAILGATE_CLEANMYLIST_INTERVAL_MS": "500",
            "EMAILGATE_REDIS_URL": "redis://:pw@127.0.0.1:6379/2",
            "EMAILGATE_DNS_SERVERS": "127.0.0.1:5353, ::1, [::1]:53",
            "EMAILGATE_API_KEYS_FILE": str(keys),
            "EMAILGATE_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7",
            "EMAILGATE_LOG_LEVEL": "DEBUG",
            "EMAILGATE_REPLICAS": "3",
            "EMAILGATE_DEMO": "off",
        }
    )
    assert (s.host, s.port, s.deadline, s.deadline_ms) == ("0.0.0.0", 9000, 0.8, 800)
    assert dict(s.thresholds) == {"signup": 25, "marketing": 60, "checkout": 40}
    assert s.active_providers == ("cleanmylist", "listcleanser")
    assert s.listcleanser_api_key == Secret("lc-secret")
    assert s.listcleanser_url == "http://127.0.0.1:9001"
    assert s.listcleanser_rate == Rate(100, 30.0)
    assert s.cleanmylist_interval_ms == 500
    assert s.redis_url is not None and s.redis_url.reveal().endswith("/2")
    assert s.dns_servers == ("127.0.0.1:5353", "::1", "[::1]:53")
    assert s.api_keys_file == keys
    assert s.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
    )
    assert (s.log_level, s.replicas, s.demo) == ("debug", 3, False)


def test_all_problems_are_reported_at_once() -> None:
    """Several bad settings give one error listing each of them."""
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env(
            {
                "EMAILGATE_PORT": "http",
                "EMAILGATE_DEADLINE_MS": "-5",
                "EMAILGATE_THRESHOLDS": "signup=300",
                "EMAILGATE_PROVIDERS": "listcleanser,zerobounce",
                "EMAILGATE_LISTCLEANSER_RATE": "fast",
                "EMAILGATE_LISTCLEANSER_URL": "ftp://x",
                "EMAILGATE_REDIS_URL": "http://:hunter2@redis:6379",
                "EMAILGATE_DNS_SERVERS": "dns.google",
                "EMAILGATE_API_KEYS_FILE": "/nonexistent/keys.toml",
                "EMAILGATE_TRUSTED_PROXIES": "10.0.0.0/33",
                "EMAILGATE_LOG_LEVEL": "loud",
                "EMAILGATE_DEMO": "maybe",
                "EMAILGATE_TIMEOUT": "5",
            }
        )
    problems = excinfo.value.problems
    names = [p.split(":")[0] for p in problems]
    assert names == [
        "EMAILGATE_PORT", "EMAILGATE_DEADLINE_MS", "EMAILGATE_THRESHOLDS", "EMAILGATE_PROVIDERS",
        "EMAILGATE_LISTCLEANSER_URL", "EMAILGATE_LISTCLEANSER_RATE", "EMAILGATE_REDIS_URL",
        "EMAILGATE_DNS_SERVERS", "EMAILGATE_API_KEYS_FILE", "EMAILGATE_TRUSTED_PROXIES",
        "EMAILGATE_LOG_LEVEL", "EMAILGATE_DEMO", "EMAILGATE_TIMEOUT",
    ]  # fmt: skip
    assert "hunter2" not in str(excinfo.value)  # a password in a bad URL is still a secret


def test_signup_context_must_exist() -> None:
    """Thresholds without `signup` are refused: it is the default context."""
    with pytest.raises(SettingsError, match="signup"):
        Settings.from_env({"EMAILGATE_THRESHOLDS": "marketing=50"})


def test_a_short_hash_key_is_refused_without_echoing_it() -> None:
    """EMAILGATE_HASH_KEY needs 16 characters; the error does not print the value."""
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({"EMAILGATE_HASH_KEY": "tooshort"})
    assert "tooshort" not in str(excinfo.value)


def test_secrets_never_show_in_repr() -> None:
    """repr of Settings shows that a key is set, never the key."""
    s = Settings.from_env(
        {
            "EMAILGATE_LISTCLEANSER_API_KEY": "lc-very-secret",
            "EMAILGATE_CLEANMYLIST_API_KEY": "cml-very-secret",
            "EMAILGATE_REDIS_URL": "redis://:redis-pass@127.0.0.1:6379/0",
            "EMAILGATE_HASH_KEY": "0123456789abcdef-hash",
        }
    )
    text = repr(s) + str(s)
    for secret in ("lc-very-secret", "cml-very-secret", "redis-pass", "0123456789abcdef-hash"):
        assert secret not in text


def test_redact_url_hides_only_the_password() -> None:
    """A Redis URL in a log keeps user, host and port but not the password."""
    assert redact_url("redis://user:pw@host:6380/1") == "redis://user:****@host:6380/1"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"


@pytest.mark.parametrize(
    ("text", "rate"),
    [("200/60s", Rate(200, 60)), ("30/1m", Rate(30, 60)), ("10/h", Rate(10, 3600)),
     ("5/500ms", Rate(5, 0.5))],
)  # fmt: skip
def test_rates_parse(text: str, rate: Rate) -> None:
    """Rates are N per a window with a unit."""
    assert Rate.parse(text) == rate


def test_embedded_defaults_are_named() -> None:
    """The start-up log can say which settings are left at their defaults."""
    s = Settings.from_env({"EMAILGATE_PORT": "9000"})
    assert "port" not in s.embedded_defaults()
    assert "deadline_ms" in s.embedded_defaults()


def test_cleanlist_settings() -> None:
    """Enrichment: off without a key; URL and fixed window read; the key never printed."""
    default = Settings.from_env({})
    assert default.cleanlist_api_key is None
    assert default.cleanlist_url == "https://api.cleanlist.ai/api/v1/public"
    assert default.cleanlist_rate == Rate(60, 60.0)
    s = Settings.from_env(
        {
            "EMAILGATE_CLEANLIST_API_KEY": "clapi_secret_value",
            "EMAILGATE_CLEANLIST_URL": "http://127.0.0.1:9/api/v1/public/",
            "EMAILGATE_CLEANLIST_RATE": "60/6s",
        }
    )
    assert s.cleanlist_api_key == Secret("clapi_secret_value")
    assert s.cleanlist_url == "http://127.0.0.1:9/api/v1/public"
    assert s.cleanlist_rate == Rate(60, 6.0)
    assert "clapi_secret_value" not in repr(s)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"EMAILGATE_CLEANLIST_URL": "ftp://x", "EMAILGATE_CLEANLIST_RATE": "x"})
    assert len(caught.value.problems) == 2
