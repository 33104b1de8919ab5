"""Coinbase Advanced Trade."""
