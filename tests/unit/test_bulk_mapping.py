"""Bulk providers without the network: their settings, reason tables, row mapping and CSV."""

from __future__ import annotations

import pytest

from emailgate.bulk import listcleaner
from emailgate.bulk.csvrows import email_csv, read_rows
from emailgate.bulk.emailconsul import row_verdict
from emailgate.config import Secret, Settings, SettingsError
from emailgate.providers.errors import BadResponse
from emailgate.providers.http import whole_number
from emailgate.verify.result import Reason, Source, State

# -- settings ---------------------------------------------------------------------------------


def test_bulk_settings_default_to_the_documented_order_and_urls() -> None:
    """No settings: the three bulk providers in order, none active (no keys), threshold 500."""
    s = Settings.from_env({})
    assert s.batch_providers == ("listcleanser", "listcleaner", "emailconsul")
    assert s.active_batch_providers == ()
    assert s.listcleaner_url == "https://api.listcleaner.net"
    assert s.emailconsul_url == "https://api.emailconsul.com"
    assert s.batch_realtime_max == 500


def test_bulk_providers_without_keys_are_left_out_in_the_given_order() -> None:
    """The order is the setting's; a provider without its key drops out of the active list."""
    s = Settings.from_env({
        "EMAILGATE_BATCH_PROVIDERS": "emailconsul, listcleanser,listcleaner",
        "EMAILGATE_EMAILCONSUL_API_KEY": "ec", "EMAILGATE_LISTCLEANER_API_KEY": "lc",
        "EMAILGATE_LISTCLEANER_USER_EMAIL": "owner@company.com",
        "EMAILGATE_LISTCLEANER_URL": "http://127.0.0.1:9/", "EMAILGATE_BATCH_REALTIME_MAX": "0",
    })  # fmt: skip
    assert s.active_batch_providers == ("emailconsul", "listcleaner")
    assert s.listcleaner_url == "http://127.0.0.1:9"
    assert s.listcleaner_user_email == Secret("owner@company.com")
    assert s.batch_realtime_max == 0


def test_bad_bulk_settings_are_all_reported() -> None:
    """Unknown bulk provider, a Listcleaner key without its user, a bad URL, a bad threshold."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({
            "EMAILGATE_BATCH_PROVIDERS": "listcleanser,cleanmylist",
            "EMAILGATE_LISTCLEANER_API_KEY": "secret-value",
            "EMAILGATE_EMAILCONSUL_URL": "ftp://x", "EMAILGATE_BATCH_REALTIME_MAX": "-1",
        })  # fmt: skip
    text = "\n".join(caught.value.problems)
    assert "EMAILGATE_BATCH_PROVIDERS: unknown provider(s) cleanmylist" in text
    assert "EMAILGATE_LISTCLEANER_USER_EMAIL and EMAILGATE_LISTCLEANER_API_KEY" in text
    assert "EMAILGATE_EMAILCONSUL_URL" in text
    assert "EMAILGATE_BATCH_REALTIME_MAX" in text
    assert "secret-value" not in text
    assert len(caught.value.problems) == 4


def test_bulk_secrets_never_show_in_repr() -> None:
    """Settings' repr hides the bulk keys and Listcleaner's account address."""
    s = Settings.from_env({
        "EMAILGATE_LISTCLEANER_API_KEY": "lc-secret", "EMAILGATE_EMAILCONSUL_API_KEY": "ec-secret",
        "EMAILGATE_LISTCLEANER_USER_EMAIL": "owner@company.com",
    })  # fmt: skip
    text = repr(s)
    assert "lc-secret" not in text and "ec-secret" not in text and "owner@" not in text


# -- Listcleaner's reason table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "state", "result_reason", "score"),
    [
        ("ok", State.DELIVERABLE, Reason.ACCEPTED_EMAIL, 90),
        ("catch_all", State.RISKY, Reason.LOW_DELIVERABILITY, 60),
        ("spamtrap", State.RISKY, Reason.LOW_QUALITY, 0),
        ("blacklisted_email", State.RISKY, Reason.LOW_QUALITY, 10),
        ("disposable_domain", State.RISKY, Reason.LOW_QUALITY, 10),
        ("account_inactive", State.UNDELIVERABLE, Reason.REJECTED_EMAIL, 5),
        ("syntax_error", State.UNDELIVERABLE, Reason.INVALID_EMAIL, 0),
        ("invalid_mx", State.UNDELIVERABLE, Reason.INVALID_DOMAIN, 0),
        ("mx_server_offline", State.RISKY, Reason.LOW_DELIVERABILITY, 20),
        ("mx_server_error", State.RISKY, Reason.LOW_DELIVERABILITY, 20),
        ("  Catch_All ", State.RISKY, Reason.LOW_DELIVERABILITY, 60),
        ("something_new", State.UNKNOWN, Reason.UNKNOWN, 30),
        ("", State.UNKNOWN, Reason.UNKNOWN, 30),
    ],
)
def test_listcleaner_reasons_map_by_the_stated_table(
    reason: str, state: State, result_reason: Reason, score: int
) -> None:
    """Each documented reason (case and spaces forgiven) and an unknown one map as stated."""
    verdict = listcleaner.verdict_for(reason)
    assert (verdict.state, verdict.reason, verdict.score) == (state, result_reason, score)
    assert verdict.source is Source.LISTCLEANER


def test_listcleaner_flags_follow_their_reason() -> None:
    """catch_all sets accept_all, spamtrap the trap flag, disposable_domain the disposable one."""
    assert listcleaner.verdict_for("catch_all").accept_all is True
    assert listcleaner.verdict_for("ok").accept_all is False
    assert listcleaner.verdict_for("spamtrap").possible_spamtrap is True
    assert listcleaner.verdict_for("disposable_domain").disposable is True


def test_listcleaner_table_decides_like_the_thresholds_say() -> None:
    """Only `ok` and `catch_all` pass marketing's 50; the bad reasons fail signup's 30 too."""
    passing = {r for r, v in listcleaner.REASONS.items() if v.score >= 50}
    assert passing == {"ok", "catch_all"}
    assert all(v.score < 30 for r, v in listcleaner.REASONS.items() if r not in passing)


# -- EmailConsul's rows -----------------------------------------------------------------------


def row(**fields: str) -> dict[str, str]:
    """An export row with the given columns (dotted names as keyword-friendly `__`)."""
    return {k.replace("__", "."): v for k, v in fields.items()}


def test_emailconsul_row_maps_every_documented_field() -> None:
    """Status, reason, score, yes/no flags, provider, MX record and toxicity all land."""
    email, v = row_verdict(row(
        email="a@good.com", status="risky", reason="low_quality", score="42.4",
        domain__accept_all="yes", domain__disposable="no", domain__free="yes",
        account__role="yes", provider="Google", dns__type="MX", dns__record="mx.good.com",
        toxic="no", toxicity="4",
    )) or ("", None)  # fmt: skip
    assert email == "a@good.com" and v is not None
    assert (v.state, v.reason, v.score, v.source) == (
        State.RISKY, Reason.LOW_QUALITY, 42, Source.EMAILCONSUL,
    )  # fmt: skip
    assert (v.accept_all, v.disposable, v.free, v.role) == (True, False, True, True)
    assert (v.smtp_provider, v.mx_record, v.possible_spamtrap) == ("Google", "mx.good.com", True)


@pytest.mark.parametrize(
    ("fields", "expect"),
    [
        ({"reason": "unavailable_smtp"}, ("reason", Reason.UNKNOWN)),
        ({"reason": "unsupported"}, ("reason", Reason.UNKNOWN)),
        ({"reason": "brand_new"}, ("reason", Reason.UNKNOWN)),
        ({"reason": "timeout"}, ("reason", Reason.TIMEOUT)),
        ({"score": ""}, ("score", 90)),
        ({"score": "abc"}, ("score", 90)),
        ({"score": "250"}, ("score", 100)),
        ({"domain__accept_all": "unknown"}, ("accept_all", None)),
        ({"domain__accept_all": "no"}, ("accept_all", False)),
        ({"toxic": "yes", "toxicity": "0"}, ("possible_spamtrap", True)),
        ({"toxicity": "3"}, ("possible_spamtrap", False)),
        ({"dns__type": "A", "dns__record": "192.0.2.1"}, ("mx_record", None)),
    ],
)
def test_emailconsul_row_edges(fields: dict[str, str], expect: tuple[str, object]) -> None:
    """Reasons RESULT lacks, missing or odd scores, unknown flags and non-MX records."""
    base = {"email": "a@good.com", "status": "deliverable", "reason": "accepted_email"}
    pair = row_verdict(base | row(**fields))
    assert pair is not None
    assert getattr(pair[1], expect[0]) == expect[1]


@pytest.mark.parametrize("status", ["", "valid", "DONE"])
def test_emailconsul_rows_with_an_undocumented_status_are_left_out(status: str) -> None:
    """A row whose status is not one of the four states gives no verdict."""
    assert row_verdict({"email": "a@good.com", "status": status}) is None
    assert row_verdict({"email": "", "status": "deliverable"}) is None


# -- CSV --------------------------------------------------------------------------------------


def test_upload_csv_round_trips_awkward_addresses() -> None:
    """Quotes and commas are quoted so a CSV reader gets the addresses back."""
    emails = ['o"neil@good.com', "a,b@good.com", "plain@good.com"]
    text = email_csv(emails).decode()
    assert text.startswith("email\r\n")
    assert [r["email"] for r in read_rows(text, "x", required=["email"])] == emails


def test_result_csv_is_read_by_name_with_bom_case_and_blank_lines() -> None:
    """A BOM-less header in another case, a quoted newline, a blank line: read by name."""
    text = 'Reason,EMAIL\r\nok,"multi\nline@x.com"\r\n\r\nspamtrap,b@x.com\r\n'
    rows = list(read_rows(text, "x", required=["email", "reason"]))
    assert rows == [
        {"reason": "ok", "email": "multi\nline@x.com"},
        {"reason": "spamtrap", "email": "b@x.com"},
    ]


def test_result_csv_without_a_required_column_names_what_it_has() -> None:
    """The error lists the columns found, so an operator sees what the provider sent."""
    with pytest.raises(BadResponse, match=r"no reason column \('email', 'status'\)"):
        list(read_rows("email,status\r\na@x.com,ok\r\n", "x", required=["email", "reason"]))
    with pytest.raises(BadResponse, match="empty"):
        list(read_rows("", "x", required=["email"]))


def test_provider_counts_are_ascii_whole_numbers_or_nothing() -> None:
    """Numbers and strings of ASCII digits are counts; "²", "٣", booleans and junk are not
    (int() refuses the first two, so they must not get that far)."""
    assert [whole_number(v) for v in (436, "436", " 7 ", 0)] == [436, 436, 7, 0]
    assert [whole_number(v) for v in ("²", "٣", True, "", "1.5", None, [1])] == [None] * 7
