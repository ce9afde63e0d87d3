"""A small HTTP/1.1 client over raw asyncio sockets, for load that does not starve the server.

httpx costs a few hundred microseconds of client CPU per request; on a 2-core machine that is
CPU the server under test does not get, and the figure then measures the client. This client
writes the request bytes itself and reads the answer with ``readuntil``/``readexactly``, so a
request costs tens of microseconds. It speaks only what the device API answers: a status line,
headers, and a body framed by ``Content-Length`` or ``chunked`` (or none, for 204 and 304).

:func:`closed_loop` is the measuring loop of the throughput benchmarks: ``clients`` keep-alive
connections, each sending its next request as soon as the last answer is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

READ_LIMIT = 1 << 20
T = TypeVar("T")


class HttpError(Exception):
    """The connection broke or the answer was not HTTP/1.1 as expected."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Request:
    """One request, encoded once and sent as often as wanted."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class Connection:
    """One keep-alive HTTP/1.1 connection to ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, limit=READ_LIMIT
        )

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def send(self, raw: bytes, *, head: bool = False) -> Reply:
        """Send already encoded request bytes and read the whole answer.

        Raises:
            HttpError: the connection is closed or broke, or the answer is not HTTP/1.1.
        """
        if self._reader is None or self._writer is None:
            raise HttpError("the connection is not open")
        try:
            self._writer.write(raw)
            head_bytes = await self._reader.readuntil(b"\r\n\r\n")
            status, headers = _parse_head(head_bytes)
            body = b""
            if head or status in (204, 304) or 100 <= status < 200:
                pass
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await self._chunked()
            else:
                body = await self._reader.readexactly(int(headers.get("content-length", "0")))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            await self.close()
            raise HttpError(f"{type(error).__name__}: {error}") from error
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Reply(status, headers, body)

    async def request(self, request: Request) -> Reply:
        return await self.send(request.encode(self.host), head=request.method == "HEAD")

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise HttpError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(rest[:3]), headers


@dataclass
class LoopResult:
    """What one closed-loop round did: answers by status, failures, and the elapsed time."""

    seconds: float
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0


async def closed_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    seconds: float,
    accept: Callable[[Reply], bool],
    connections: Sequence[Connection] | None = None,
) -> LoopResult:
    """Send ``requests[i]`` on connection ``i`` again and again for ``seconds``.

    Each connection has one request in flight at a time (a closed loop, like an agent).
    ``connections`` may be given to reuse the same keep-alive sockets across rounds; a
    connection that breaks is opened again and the break counted as a failure, as is every
    answer ``accept`` refuses.
    """
    own = connections is None
    pool = list(connections) if connections is not None else []
    while len(pool) < len(requests):
        pool.append(Connection(host, port))
    result = LoopResult(seconds=0.0)
    started = time.perf_counter()
    stop = started + seconds

    async def one(index: int) -> None:
        connection, raw = pool[index], requests[index]
        while time.perf_counter() < stop:
            try:
                if not connection.is_open:
                    await connection.open()
                reply = await connection.send(raw)
            except (HttpError, OSError):
                result.failures += 1
                continue
            result.statuses[reply.status] = result.statuses.get(reply.status, 0) + 1
            if not accept(reply):
                result.failures += 1

    await asyncio.gather(*(one(i) for i in range(len(requests))))
    result.seconds = time.perf_counter() - started
    if own:
        for connection in pool:
            await connection.close()
    return result


# -- the client process --------------------------------------------------------------------
#
# ``python -m bench._http`` reads a JSON spec on stdin, runs the rounds in its own process
# (so its CPU is accounted apart from the server's), prints ``mark begin|end NAME`` lines
# around each round and, last, one JSON result line. The spec:
#   {"host": "127.0.0.1", "port": 8000, "seconds": 3.0, "repeat": 5,
#    "rounds": [{"name": "noop", "requests": ["GET /healthz", ...], "headers": [{...}, ...],
#                "accept": [200]}, ...]}
# Every round uses the same keep-alive connections; rounds alternate ``repeat`` times.


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    host, port, seconds = str(spec["host"]), int(spec["port"]), float(spec["seconds"])
    rounds = spec["rounds"]
    width = max(len(r["requests"]) for r in rounds)
    pool = [Connection(host, port) for _ in range(width)]
    results: dict[str, list[dict[str, Any]]] = {r["name"]: [] for r in rounds}
    for _ in range(int(spec["repeat"])):
        for round_spec in rounds:
            accepted = set(round_spec["accept"])
            raw = [
                Request(method, path, headers).encode(f"{host}:{port}")
                for (method, path), headers in zip(
                    (line.split(" ", 1) for line in round_spec["requests"]),
                    round_spec["headers"],
                    strict=True,
                )
            ]
            _mark("begin", round_spec["name"])
            done = await closed_loop(
                host,
                port,
                raw,
                seconds=seconds,
                accept=lambda reply, ok=accepted: reply.status in ok,  # type: ignore[misc]
                connections=pool[: len(raw)],
            )
            _mark("end", round_spec["name"])
            results[round_spec["name"]].append(
                {
                    "rate": done.rate,
                    "answered": done.answered,
                    "failures": done.failures,
                    "seconds": done.seconds,
                    "statuses": {str(k): v for k, v in done.statuses.items()},
                }
            )
    for connection in pool:
        await connection.close()
    return {"rounds": results}


def _mark(moment: str, name: str) -> None:
    """Tell the parent a round begins or ends, so it can read the server's CPU time then."""
    print(f"mark {moment} {name}", flush=True)


def run_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on uvloop when it is installed (a cheaper loop), else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    spec = json.load(sys.stdin)
    started_cpu = time.process_time()
    started = time.perf_counter()
    result = run_loop(_drive(spec))
    result["client_cpu_s"] = time.process_time() - started_cpu
    result["client_wall_s"] = time.perf_counter() - started
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
