"""Coinone (KRW markets)."""
