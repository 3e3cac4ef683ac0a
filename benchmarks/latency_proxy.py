"""A TCP proxy in front of Postgres that delays every byte by half a round trip each way.

It makes a local server behave like one a network hop away, where a client that serializes its
calls pays the round trip on every one of them. Used by ``concurrency.py --rtt-ms``; runs in a
process of its own so that it takes no CPU from the process being measured::

    .venv/bin/python benchmarks/latency_proxy.py <conninfo> <rtt-ms>   # prints the port it serves
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward in order, each chunk ``delay`` seconds after it arrived."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            arrived, data = await queue.get()
            if not data:
                break
            wait = arrived + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    delivering = asyncio.create_task(deliver())
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic(), data))
    queue.put_nowait((time.monotonic(), b""))
    with contextlib.suppress(ConnectionError):
        await delivering


async def serve(conninfo: str, rtt: float) -> None:
    params = conninfo_to_dict(conninfo)
    host, port = str(params.get("host") or "localhost"), int(params.get("port") or 5432)

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if host.startswith("/"):
            upstream = await asyncio.open_unix_connection(str(Path(host) / f".s.PGSQL.{port}"))
        else:
            upstream = await asyncio.open_connection(host, port)
        client_writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            _pump(client_reader, upstream[1], rtt / 2), _pump(upstream[0], client_writer, rtt / 2)
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def proxied(url: str, rtt_ms: float) -> Iterator[str]:
    """``url`` reached through a proxy adding ``rtt_ms`` of round trip (``url`` itself if 0)."""
    if rtt_ms <= 0:
        yield url
        return
    proc = subprocess.Popen([sys.executable, __file__, url, str(rtt_ms)], stdout=subprocess.PIPE, text=True)
    try:
        port = int((proc.stdout.readline() if proc.stdout else "").strip())
        params = conninfo_to_dict(url)
        parts = urlsplit(url)
        netloc = f"{params.get('user') or ''}@127.0.0.1:{port}"
        yield urlunsplit(parts._replace(netloc=netloc, query=""))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], float(sys.argv[2]) / 1000))
