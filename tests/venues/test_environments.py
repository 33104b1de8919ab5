"""`environment = "testnet"` per venue: the one table of test endpoints resolves to the
venues' published test hosts for REST, public and private WebSocket (sources: Binance
binance-spot-api-docs testnet/general-info.md; OKX docs-v5 "Demo Trading Services";
Coinbase docs.cdp.coinbase.com advanced-trade-apis/sandbox; Bitfinex paper trading, support
article 115003363429); a testnet venue without one is refused, and no live URL is used."""

from __future__ import annotations

import asyncio
import os
import subprocess
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from schemas import PlaceOrder
from schemas.common import VENUES
from schemas.queries import TickerQuery
from schemas.vault import Credentials
from services.config import load_config
from services.config_check import check_raw
from services.executor.gateway import VenueGateway
from services.ingestor.service import FeedSpec, Ingestor, check_specs, feed_endpoints, runnable
from services.ingestor.snapshots import RestSnapshots
from services.venues import rest_adapter
from services.venues.environments import TESTNETS, NoTestnet, endpoints
from services.venues.http import HttpTransport
from services.venues.privatews import private_stream
from services.venues.wsbase import ws_adapter
from tests.local_http import serve_http

OKX_KEY = Credentials(api_key="okx-demo-key", secret="okx-demo-secret", passphrase="okx-demo-pass", environment="testnet")
OKX_ORDER = PlaceOrder(command_id="c1", venue="okx", account="demo", symbol="BTC-USDT", client_order_id="o1",
                       side="buy", order_type="limit", quantity=Decimal("0.01"), price=Decimal("50000"))
NO_TESTNET = ("kraken", "upbit", "bithumb", "korbit", "coinone")


class RecordingTransport:
    """Stands in for the venue transport: records what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, request, *, idempotent):  # pragma: no cover - reaching it fails the test
        self.sent.append(request.url)
        raise AssertionError(f"a request was sent: {request.method} {request.url}")


def gateway(environments: dict[str, str], venue_urls: dict[str, str] | None = None,
            transport: object | None = None) -> VenueGateway:
    return VenueGateway(None, None, None, transport or RecordingTransport(), venue_urls, environments)  # type: ignore[arg-type]


def host(url: str) -> str:
    return urlsplit(url).netloc


# --- the table ------------------------------------------------------------------------------------

def test_every_venue_has_one_entry_and_the_ones_without_a_testnet_say_so() -> None:
    assert set(TESTNETS) == set(VENUES)
    assert {v for v, t in TESTNETS.items() if not t.exists} == set(NO_TESTNET)
    for venue in NO_TESTNET:
        assert TESTNETS[venue].notes, f"{venue}: why it has no testnet"


def test_binance_spot_testnet_for_rest_public_and_private_websocket() -> None:
    where = endpoints("binance", "testnet")
    assert where.rest_url == "https://testnet.binance.vision"
    assert where.ws_url == "wss://stream.testnet.binance.vision/stream"  # combined streams, as the live adapter uses
    assert where.private_ws_url == "wss://ws-api.testnet.binance.vision/ws-api/v3"
    assert where.rest_headers == {}


def test_okx_demo_trading_is_the_live_rest_host_with_the_header_and_the_demo_websocket_hosts() -> None:
    where = endpoints("okx", "testnet")
    assert where.rest_url == rest_adapter("okx").url == "https://www.okx.com"
    assert where.rest_headers == {"x-simulated-trading": "1"}
    assert where.ws_url == "wss://wspap.okx.com:8443/ws/v5/public"
    assert where.private_ws_url == "wss://wspap.okx.com:8443/ws/v5/private"


def test_coinbase_sandbox_is_rest_only() -> None:
    where = endpoints("coinbase", "testnet")
    assert where.rest_url == "https://api-sandbox.coinbase.com"
    assert where.ws_url is None and where.private_ws_url is None


def test_bitfinex_paper_trading_is_the_live_hosts_of_the_venue_modules() -> None:
    """Paper trading is a sub-account on the production endpoints: the table's hosts must be
    exactly the venue modules' live ones (a drift would point paper keys elsewhere)."""
    from services.venues.bitfinex.private import ADAPTER as PRIVATE

    where = endpoints("bitfinex", "testnet")
    assert where.rest_url == rest_adapter("bitfinex").url
    assert where.ws_url == ws_adapter("bitfinex").url
    assert where.private_ws_url == PRIVATE.url


def test_live_resolves_to_the_venue_modules_own_endpoints() -> None:
    for venue in VENUES:
        assert endpoints(venue, "live") == endpoints(venue)
        assert endpoints(venue).rest_url is None and endpoints(venue).ws_url is None  # the modules' own


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown environment 'demo'"):
        endpoints("okx", "demo")


# --- REST: the executor's adapters ------------------------------------------------------------------

def test_okx_signed_request_carries_the_demo_header_in_testnet_only() -> None:
    demo = gateway({"okx": "testnet"}).adapter("okx").build_request("place_order", OKX_ORDER, OKX_KEY, 1_700_000_000_000)
    live = gateway({}).adapter("okx").build_request("place_order", OKX_ORDER, OKX_KEY, 1_700_000_000_000)
    assert demo.headers["x-simulated-trading"] == "1"
    assert "x-simulated-trading" not in live.headers
    for signed in (demo, live):  # the header rides along the signature, it does not replace it
        assert signed.headers["OK-ACCESS-SIGN"] and signed.headers["OK-ACCESS-KEY"] == "okx-demo-key"
        assert host(signed.url) == "www.okx.com"
    assert {k: v for k, v in demo.headers.items() if k != "x-simulated-trading"} == live.headers


async def test_okx_demo_header_reaches_the_server_through_the_transport() -> None:
    """Pointed at a local server (an explicit URL wins), the executor's OKX adapter in testnet
    still sends x-simulated-trading: 1 on the signed request, through the one transport."""
    seen: list[dict[str, str]] = []

    async def order(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"code": "0", "msg": "", "data": []})

    async with serve_http([("POST", "/api/v5/trade/order", order)]) as url, HttpTransport(timeout_s=5.0) as transport:
        for environment in ("testnet", "live"):
            adapter = gateway({"okx": environment}, {"okx": url}).adapter("okx")
            request = adapter.build_request("place_order", OKX_ORDER, OKX_KEY, 1_700_000_000_000)
            response = await transport.send(request, idempotent=False)
            assert response.status == 200
    demo, live = seen
    assert demo.get("x-simulated-trading") == "1" and "OK-ACCESS-SIGN" in demo
    assert "x-simulated-trading" not in live and "OK-ACCESS-SIGN" in live


def test_binance_testnet_rest_and_private_stream_urls() -> None:
    gw = gateway({"binance": "testnet"})
    request = gw.adapter("binance").build_request("ticker", TickerQuery(symbol="BTC-USDT"), None, 0)
    assert host(request.url) == "testnet.binance.vision"
    stream = private_stream("binance", gw.adapter("binance"), gw.private_stream_url("binance"))
    assert stream is not None and stream.url == "wss://ws-api.testnet.binance.vision/ws-api/v3"
    okx = gateway({"okx": "testnet"})
    okx_stream = private_stream("okx", okx.adapter("okx"), okx.private_stream_url("okx"))
    assert okx_stream is not None and okx_stream.url == "wss://wspap.okx.com:8443/ws/v5/private"


def test_live_private_streams_keep_their_own_urls() -> None:
    from services.venues.binance.private import ADAPTER as BINANCE

    gw = gateway({})
    stream = private_stream("binance", gw.adapter("binance"), gw.private_stream_url("binance"))
    assert stream is not None and stream.url == BINANCE.url


def test_an_override_wins_and_its_host_serves_the_private_stream() -> None:
    """The simulator's URL stands in for the testnet's (REST and, on the same host, the
    private stream); the venue stays in testnet (keys are checked against that)."""
    gw = gateway({"binance": "testnet"}, {"binance": "http://127.0.0.1:9999"})
    assert gw.adapter("binance").url == "http://127.0.0.1:9999" and gw.environment("binance") == "testnet"
    stream = private_stream("binance", gw.adapter("binance"), gw.private_stream_url("binance"))
    assert stream is not None and stream.url == "ws://127.0.0.1:9999/ws-api/v3"


def test_coinbase_sandbox_has_no_private_stream_so_its_orders_are_polled() -> None:
    from services.executor.order_streams import OrderStreams

    gw = gateway({"coinbase": "testnet"})
    assert host(gw.adapter("coinbase").url) == "api-sandbox.coinbase.com"
    with pytest.raises(NoTestnet, match="coinbase's Advanced Trade static sandbox has no private WebSocket"):
        gw.private_stream_url("coinbase")
    assert OrderStreams(gw, None).adapter("coinbase") is None  # type: ignore[arg-type]


@pytest.mark.parametrize("venue", NO_TESTNET)
async def test_a_venue_without_testnet_is_refused_and_nothing_is_sent(venue: str) -> None:
    transport = RecordingTransport()
    gw = gateway({venue: "testnet"}, transport=transport)
    with pytest.raises(NoTestnet, match=f"^{venue} has no testnet .*never falls back to live"):
        gw.adapter(venue)
    with pytest.raises(NoTestnet):
        await gw.call(venue, "public", "ticker", TickerQuery(symbol="BTC-KRW"))
    assert transport.sent == []


# --- WebSocket and REST snapshots: the ingestor ---------------------------------------------------------

def _spec(venue: str, environment: str, **kw: str) -> FeedSpec:
    return FeedSpec(venue=venue, symbols=["BTC-USDT"], channels=["trade", "book"], environment=environment, **kw)


def test_ingestor_feeds_connect_to_the_testnet_websocket_and_snapshot_from_its_rest() -> None:
    stop = asyncio.Event()
    ingestor = Ingestor(None, [_spec("binance", "testnet"), _spec("okx", "testnet")], stop)
    for venue, ws in (("binance", "wss://stream.testnet.binance.vision/stream"),
                      ("okx", "wss://wspap.okx.com:8443/ws/v5/public")):
        (adapter,) = {c.adapter.url for c in ingestor.feeds[venue].connections}
        assert adapter == ws
    assert ingestor.rest.base_urls == {"binance": "https://testnet.binance.vision", "okx": "https://www.okx.com"}
    assert ingestor.rest.headers == {"okx": {"x-simulated-trading": "1"}}


def test_ingestor_live_feed_is_unchanged() -> None:
    ingestor = Ingestor(None, [_spec("binance", "live")], asyncio.Event())
    (url,) = {c.adapter.url for c in ingestor.feeds["binance"].connections}
    assert url == ws_adapter("binance").url and ingestor.rest.base_urls == {} and ingestor.rest.headers == {}


def test_ingestor_never_takes_snapshots_or_backfill_from_the_live_host_of_a_testnet_venue() -> None:
    """A test server of one's own for the WebSocket only: a feed that also needs REST (Binance's and OKX's
    books resync from REST snapshots, Kraken backfills trades) is refused rather than
    sending those requests live; one that does not (Korbit resyncs from its stream) runs."""
    with pytest.raises(NoTestnet, match="ingestor.venues.kraken.rest_url"):
        feed_endpoints(_spec("kraken", "testnet", url="ws://127.0.0.1:1"))  # kraken backfills trades over REST
    where = feed_endpoints(_spec("korbit", "testnet", url="ws://127.0.0.1:1/v2/public"))
    assert where.ws_url == "ws://127.0.0.1:1/v2/public" and where.rest_url is None


def test_ingestor_explicit_urls_win_over_the_testnet() -> None:
    where = feed_endpoints(_spec("binance", "testnet", url="ws://127.0.0.1:1/stream", rest_url="http://127.0.0.1:1"))
    assert (where.ws_url, where.rest_url) == ("ws://127.0.0.1:1/stream", "http://127.0.0.1:1")


@pytest.mark.parametrize("venue", [*NO_TESTNET, "coinbase"])
def test_ingestor_refuses_a_testnet_venue_without_a_market_data_testnet(venue: str) -> None:
    spec = _spec(venue, "testnet")
    with pytest.raises(NoTestnet, match=f"^{venue}"):
        check_specs([spec])
    with pytest.raises(NoTestnet):
        Ingestor(None, [spec], asyncio.Event())  # never builds a connection to the live host
    from services.observability.catalog import INGESTOR  # what `exbus status` shows of the ingestor

    before = INGESTOR.environments.get(venue)  # the process's metrics: other tests may have run the venue live
    assert runnable([spec, _spec("binance", "live")]) == [_spec("binance", "live")]
    assert INGESTOR.environments["binance"] == "live" and INGESTOR.environments.get(venue) == before


async def test_okx_demo_snapshot_request_carries_the_header() -> None:
    seen: list[dict[str, str]] = []

    async def books(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"code": "0", "msg": "", "data": [
            {"asks": [["41006.8", "0.6", "0", "1"]], "bids": [["41006.3", "0.3", "0", "1"]], "ts": "1629966436396",
             "seqId": 3}]})  # docs-v5 "Get order book" response example, trimmed to one level

    async with serve_http([("GET", "/api/v5/market/books", books)]) as url:
        where = feed_endpoints(_spec("okx", "testnet", rest_url=url))
        snapshots = RestSnapshots(base_urls={"okx": where.rest_url}, headers={"okx": where.rest_headers})
        try:
            book = await snapshots.fetch("okx", "BTC-USDT", 5)
        finally:
            await snapshots.close()
    assert book.bids and seen[0].get("x-simulated-trading") == "1"


def test_exbus_ingest_refuses_kraken_testnet_at_start_up(exbus_cmd, clean_env) -> None:
    env = {**clean_env, "EXBUS_VENUES_KRAKEN_ENVIRONMENT": "testnet", "NATS_URL": "nats://127.0.0.1:1"}
    done = subprocess.run([*exbus_cmd, "ingest", "--venue", "kraken", "--symbols", "BTC-USD"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=os.getcwd())
    assert done.returncode != 0
    assert "kraken has no testnet" in done.stderr and "never falls back to live" in done.stderr
    assert "Traceback" not in done.stderr


# --- configuration ------------------------------------------------------------------------------------

def test_environment_from_the_file_and_the_environment_variable(tmp_path) -> None:
    file = tmp_path / "exbus.toml"
    file.write_text('[venues.okx]\nenvironment = "testnet"\n')
    config = load_config(file, env={"EXBUS_VENUES_BINANCE_ENVIRONMENT": "testnet"})
    assert config.environments() == {v: "testnet" if v in ("okx", "binance") else "live" for v in VENUES}


def test_config_check_names_unknown_venues_bad_values_and_venues_without_testnet() -> None:
    issues = {str(i) for i in check_raw({"venues": {"binance": {"environment": "testnet"},
                                                    "okx": {"environment": "demo"},
                                                    "nope": {"environment": "live"},
                                                    "kraken": {"environment": "testnet"}}})}
    assert "venues.okx.environment: 'demo' is not one of live, testnet" in issues
    assert any(i.startswith("venues.nope: unknown key") for i in issues)
    assert any(i.startswith("venues.kraken.environment: the executor: kraken has no testnet") for i in issues)
    assert not any(i.startswith("venues.binance") for i in issues)
    # an explicit URL stands in for a missing testnet (a test server of one's own)
    assert not check_raw({"venues": {"korbit": {"environment": "testnet"}},
                          "executor": {"venue_urls": {"korbit": "http://127.0.0.1:8080"}}})
