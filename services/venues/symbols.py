"""Symbol mapping shared by venues: exbus symbols are ``BASE-QUOTE`` upper case; venues
write them concatenated (BTCUSDT), reversed (KRW-BTC), with other separators or aliases
(XBT/USD). A venue module declares its format; these functions do the conversion."""

from __future__ import annotations

COMMON_QUOTES: tuple[str, ...] = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "USD", "EUR", "GBP", "TRY", "BRL", "JPY",
    "AUD", "KRW", "BIDR", "IDRT", "UAH", "RUB", "ZAR", "PLN", "RON", "ARS", "MXN", "COP", "CZK",
    "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT", "SOL",
)
"""Quote assets tried, longest match first, when a concatenated symbol must be split."""


def split(symbol: str) -> tuple[str, str]:
    """``BTC-USDT`` -> (``BTC``, ``USDT``)."""
    base, _, quote = symbol.partition("-")
    if not base or not quote:
        raise ValueError(f"symbol {symbol!r} is not BASE-QUOTE")
    return base, quote


def concatenated(symbol: str) -> str:
    """``BTC-USDT`` -> ``BTCUSDT``."""
    base, quote = split(symbol)
    return base + quote


def from_concatenated(venue_symbol: str, known: dict[str, str] | None = None,
                      quotes: tuple[str, ...] = COMMON_QUOTES) -> str:
    """``BTCUSDT`` -> ``BTC-USDT``: from the venue's instrument table when given, else by
    the longest known quote suffix."""
    s = venue_symbol.upper()
    if known and s in known:
        return known[s]
    for quote in sorted(quotes, key=len, reverse=True):
        if s.endswith(quote) and len(s) > len(quote):
            return f"{s[: -len(quote)]}-{quote}"
    raise ValueError(f"cannot split venue symbol {venue_symbol!r} into base and quote")


def quote_first(symbol: str) -> str:
    """``BTC-KRW`` -> ``KRW-BTC`` (Upbit, Bithumb market codes)."""
    base, quote = split(symbol)
    return f"{quote}-{base}"


def from_quote_first(market: str) -> str:
    """``KRW-BTC`` -> ``BTC-KRW``."""
    quote, _, base = market.upper().partition("-")
    if not base:
        raise ValueError(f"market {market!r} is not QUOTE-BASE")
    return f"{base}-{quote}"
