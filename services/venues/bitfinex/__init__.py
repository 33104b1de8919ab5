"""Bitfinex adapter: sans-IO REST and WebSocket code."""
