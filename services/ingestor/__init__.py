"""Market-data ingestor: venue WebSocket feeds, normalized and published on md.<venue>.<channel>.<symbol>."""
