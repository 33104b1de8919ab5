"""WebSocket fan-out shared by the venues: each connection has its topics, a bounded
queue and a render function (the venue's wire format for that connection); a slow
consumer whose queue fills up is disconnected, as the venues do."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from aiohttp import web

Render = Callable[[str, Any], str | bytes | None]
"""(topic, event) -> the frame to send, or None to skip."""


class StreamClient:
    """One WebSocket connection's subscriptions and outgoing queue."""

    def __init__(self, ws: web.WebSocketResponse, render: Render, maxsize: int = 10_000) -> None:
        self.ws = ws
        self.render = render
        self.topics: set[str] = set()
        self.queue: asyncio.Queue[str | bytes | None] = asyncio.Queue(maxsize)

    def offer(self, topic: str, event: Any) -> None:
        frame = self.render(topic, event)
        if frame is None:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close()

    def send(self, frame: str | bytes) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        """Stop the writer; the connection is then closed."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def pump(self) -> None:
        """Write queued frames until closed."""
        while True:
            frame = await self.queue.get()
            if frame is None or self.ws.closed:
                break
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_str(frame)
        await self.ws.close()


class Hub:
    """All stream clients of a venue; publishes events to those subscribed to a topic."""

    def __init__(self) -> None:
        self.clients: set[StreamClient] = set()
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []

    def publish(self, topic: str, event: Any) -> None:
        for client in list(self.clients):
            if topic in client.topics:
                client.offer(topic, event)

    def has(self, topic: str) -> bool:
        return any(topic in c.topics for c in self.clients)

    def add(self, client: StreamClient) -> None:
        """Register a connection (before its handshake completes, so nothing published after
        the client sees the connection open is missed)."""
        self.clients.add(client)
        self.touched()

    def touched(self) -> None:
        """Subscriptions changed: wake whoever waits for a topic that now has a subscriber."""
        for topic, waiter in list(self._waiters):
            if waiter.done() or self.has(topic):
                if not waiter.done():
                    waiter.set_result(None)
                self._waiters.remove((topic, waiter))

    async def subscribed(self, topic: str) -> None:
        """Return once some connection subscribes to ``topic``."""
        if self.has(topic):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((topic, waiter))
        await waiter

    async def serve(self, client: StreamClient, on_message: Callable[[StreamClient, str | bytes], None]) -> None:
        """Run a registered connection: reader (``on_message`` per frame) and writer, until either ends."""
        self.clients.add(client)
        writer = asyncio.create_task(client.pump())
        try:
            async for msg in client.ws:
                if msg.type in (web.WSMsgType.TEXT, web.WSMsgType.BINARY):
                    on_message(client, msg.data)
                if writer.done():
                    break
        finally:
            self.clients.discard(client)
            client.close()
            await asyncio.gather(writer, return_exceptions=True)

    def close_all(self) -> None:
        for client in list(self.clients):
            client.close()
