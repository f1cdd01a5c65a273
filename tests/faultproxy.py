"""A loopback TCP proxy that can cut every connection through it, the way asyncpg's
test suite (`_testbase/fuzzer.py`) puts one between client and server."""

from __future__ import annotations

import asyncio
import contextlib


class FaultProxy:
    """Forwards 127.0.0.1:<port> to target. cut() drops all connections and refuses
    new ones until restore(); freeze() holds every byte, connections open, until thaw();
    freeze_after(n) freezes once n more bytes went from clients to the target;
    retarget() sends new connections elsewhere (a load balancer's next replica)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = True
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._to_freeze: int | None = None
        self.frozen = asyncio.Event()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def cut(self) -> None:
        """Drop every open connection (with a reset) and refuse new ones."""
        self._open = False
        for writer in list(self._writers):
            transport = writer.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def restore(self) -> None:
        self._open = True

    def freeze(self) -> None:
        """Stop forwarding, the way a hung server stops answering."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._to_freeze = None
        self.frozen.clear()
        self._flowing.set()

    def freeze_after(self, count: int) -> None:
        """Forward exactly `count` more bytes from clients, then freeze() and set
        self.frozen: a cut placed at a known byte of a request body."""
        self._to_freeze = count
        self.frozen.clear()

    def retarget(self, host: str, port: int) -> None:
        """Connections opened from now on go to host:port; open ones stay where they are."""
        self._target = (host, port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer, from_client=True)),
            asyncio.create_task(self._pump(upstream_reader, writer, from_client=False)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                end.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_client: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(256 * 1024):
                await self._flowing.wait()
                if from_client and self._to_freeze is not None:
                    data = await self._forward_until_frozen(data, writer)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

    async def _forward_until_frozen(self, data: bytes, writer: asyncio.StreamWriter) -> bytes:
        """Forward what freeze_after() still allows of data; freeze at the limit and
        return the rest once thawed."""
        assert self._to_freeze is not None
        if len(data) < self._to_freeze:
            self._to_freeze -= len(data)
            return data
        writer.write(data[: self._to_freeze])
        await writer.drain()
        data = data[self._to_freeze :]
        self._to_freeze = None
        self.freeze()
        self.frozen.set()
        await self._flowing.wait()
        return data
