"""Korbit (KRW markets)."""
