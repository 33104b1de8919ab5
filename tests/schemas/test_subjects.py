"""Subject names are built and parsed in one place (schemas.subjects)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import subjects
from schemas.common import VENUES
from schemas.queries import PRIVATE_QUERIES, PUBLIC_QUERIES

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
venues = st.sampled_from(VENUES)
symbols = st.builds(lambda b, q: f"{b}-{q}", st.text(ALNUM, min_size=1, max_size=16), st.text(ALNUM, min_size=1, max_size=16))
accounts = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=32).filter(lambda a: a != "public")
coids = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=36)


@given(venues, st.sampled_from(["trade", "ticker", "book", "bbo"]), symbols)
def test_md_round_trip(venue: str, channel: str, symbol: str) -> None:
    s = subjects.md(venue, channel, symbol)
    assert s == f"md.{venue}.{channel}.{symbol}"
    assert subjects.parse(s) == subjects.Subject("md", venue=venue, channel=channel, symbol=symbol)


@given(venues, accounts, coids)
def test_order_subjects_round_trip(venue: str, account: str, coid: str) -> None:
    assert subjects.parse(subjects.orders_submit(venue, account)) == subjects.Subject("orders_submit", venue=venue, account=account)
    ev = subjects.orders_event(venue, account, coid)
    assert subjects.parse(ev) == subjects.Subject("orders_event", venue=venue, account=account, client_order_id=coid)
    assert subjects.parse(subjects.vault_revoked(venue, account)).kind == "vault_revoked"


@given(venues, accounts, st.sampled_from(PRIVATE_QUERIES), st.sampled_from(PUBLIC_QUERIES))
def test_query_subjects_round_trip(venue: str, account: str, private: str, public: str) -> None:
    assert subjects.parse(subjects.query(venue, account, private)) == subjects.Subject("query", venue=venue, account=account, query=private)
    assert subjects.parse(subjects.public_query(venue, public)) == subjects.Subject("public_query", venue=venue, query=public)


def test_fixed_subjects() -> None:
    assert subjects.parse("vault.credentials.get").kind == "vault_credentials"
    assert subjects.parse("vault.audit").kind == "vault_audit"
    assert subjects.parse(subjects.md_status("kraken")) == subjects.Subject("md_status", venue="kraken")
    assert subjects.orders_events_of("upbit") == "orders.events.upbit.*.*"
    assert subjects.orders_deadletter("nope", "A.B") == "orders.deadletter.unknown.unknown"


@pytest.mark.parametrize(
    "build",
    [
        lambda: subjects.md("ftx", "trade", "BTC-USD"),
        lambda: subjects.md("binance", "candles", "BTC-USD"),
        lambda: subjects.md("binance", "trade", "BTC.USD"),
        lambda: subjects.md("binance", "trade", "*"),
        lambda: subjects.orders_submit("binance", ">"),
        lambda: subjects.orders_submit("binance", "public"),
        lambda: subjects.orders_event("binance", "main", "a.b"),
        lambda: subjects.query("binance", "main", "ticker"),
        lambda: subjects.public_query("binance", "balance"),
    ],
)
def test_bad_tokens_never_make_a_subject(build) -> None:
    with pytest.raises(subjects.SubjectError):
        build()


@pytest.mark.parametrize("s", ["md.binance", "md.binance.trade", "orders.submit.binance", "foo.bar", "venue.binance.main.withdraw", "vault.revoked.x.y"])
def test_foreign_subjects_do_not_parse(s: str) -> None:
    with pytest.raises(subjects.SubjectError):
        subjects.parse(s)


@pytest.mark.parametrize("severity", ["critical", "warning", "info"])
def test_alert_subjects_round_trip(severity: str) -> None:
    from schemas.alerts import ALERT_NAMES

    for name in ALERT_NAMES:
        s = subjects.alert(severity, name)
        assert s == f"alerts.{severity}.{name}"
        parsed = subjects.parse(s)
        assert (parsed.kind, parsed.severity, parsed.name) == ("alert", severity, name)
    assert subjects.alerts_of(severity) == f"alerts.{severity}.*"


@pytest.mark.parametrize("bad", [("urgent", "auth_error"), ("critical", "whatever"), ("critical", "auth_error.x")])
def test_alert_subjects_refuse_unknown_tokens(bad: tuple[str, str]) -> None:
    with pytest.raises(subjects.SubjectError):
        subjects.alert(*bad)
    with pytest.raises(subjects.SubjectError):
        subjects.parse(f"alerts.{bad[0]}.{bad[1]}")
