"""Market-data ingestor: venue WebSocket feeds, normalized and published on NATS.

    md.<venue>.<channel>.<symbol>   Trade, Ticker, BookSnapshot/BookDelta, BBO   (core NATS;
                                    stream MD captures them when streams.md_capture is on)
    md.<venue>.status               FeedStatus: connected, disconnected, gap, resynced,
                                    stale, trades_missed

Modules, outside in:
- ``commands``: ``exbus ingest``, ``exbus record``, ``exbus replay``;
- ``service``: ``run_ingestor(nc, config, stop)``, the Ingestor (publishing, REST
  resync and trade backfill under a rate budget per venue);
- ``ownership``: feeds shared by several processes through KV leases (one owner per
  feed, handover, takeover of a dead owner's feeds, fencing);
- ``transport``: the one WebSocket transport (websockets): reconnect with backoff and
  jitter, keep-alive, watchdog;
- ``feed``: a venue's feed without I/O: connections by stream limit, books, statuses;
- ``snapshots``: REST book snapshots through the venues' REST adapters;
- ``recording`` / ``replay``: the recorded-traffic format, and loopback servers that play
  a recording to the unchanged live path.

The venue side lives in services.venues: ``wsbase`` (the sans-IO adapter base),
``book`` (the one L2 book engine and its sequence rules), ``checksum`` (CRC32s), and
``<venue>/ws.py`` per venue.

Reading a book from the bus: a BookSnapshot replaces the book, each BookDelta follows
the one with ``sequence - 1``; after a ``gap`` status for the symbol, drop the book and
wait for the next BookSnapshot (a ``resynced`` status follows it).
"""
