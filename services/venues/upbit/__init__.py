"""Upbit (KRW, BTC and USDT markets)."""
