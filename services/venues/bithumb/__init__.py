"""Bithumb (KRW markets)."""
