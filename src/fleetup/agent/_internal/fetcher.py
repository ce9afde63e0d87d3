"""A python-tuf fetcher that goes through the agent's transport and resumes targets.

python-tuf's ``Updater`` asks a :class:`tuf.ngclient.FetcherInterface` for bytes and checks
lengths and hashes itself. This fetcher sends every request through
:class:`fleetup.agent.transport.Transport` (so TUF traffic uses the same primary/fallback
links and credential as everything else) and, for the one target being downloaded, keeps
what arrived in a ``.part`` file: a later request asks only for the missing bytes
(``Range: bytes=N-``), within one call after a cut and across runs after a crash. The bytes
already on disk are handed to the Updater first, so its verification covers the whole file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from fleetup.agent.errors import DownloadInterrupted, ServerUnreachable
from fleetup.agent.transport import Transport

log = logging.getLogger(__name__)

#: Updater URLs start with this; the rest is the path on the fleetup server.
BASE = "fleetup-server://"
_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class ServerFetcher(FetcherInterface):
    """Fetch TUF metadata and targets from the fleetup server through ``transport``.

    Args:
        transport: the server seam.
        max_resumes: how many cuts one target download may survive before giving up.
    """

    def __init__(self, transport: Transport, *, max_resumes: int = 5) -> None:
        self._transport = transport
        self._max_resumes = max_resumes
        self.part_file: Path | None = None
        self.bytes_received = 0

    def _fetch(self, url: str) -> Iterator[bytes]:
        if not url.startswith(BASE):
            raise exceptions.DownloadError(f"unexpected URL {url}")
        path = url[len(BASE) :]
        if self.part_file is not None and "/tuf/targets/" in path:
            return self._resumable(path, self.part_file)
        return self._whole(path)

    def _whole(self, path: str) -> Iterator[bytes]:
        try:
            response = self._transport.request("GET", path, ok=(200, 403, 404))
        except ServerUnreachable as e:
            raise exceptions.DownloadError(str(e)) from e
        if response.status_code != 200:
            raise exceptions.DownloadHTTPError(
                f"{path}: HTTP {response.status_code}", response.status_code
            )
        self.bytes_received += len(response.content)
        return iter([response.content])

    def _resumable(self, path: str, part: Path) -> Iterator[bytes]:
        part.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        handed_over = 0
        cuts = 0
        while True:
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with self._transport.stream(path, headers=headers) as response:
                    status = response.status_code
                    if status == 416:
                        # The server has no bytes past ours: hand over what we have.
                        yield from _replay(part, handed_over)
                        return
                    if status not in (200, 206):
                        raise exceptions.DownloadHTTPError(f"{path}: HTTP {status}", status)
                    skip = 0
                    if status == 206:
                        _check_range(response, have)
                        yield from _replay(part, handed_over)
                        handed_over = have
                    else:
                        # A whole file from byte 0: what the Updater already has is skipped,
                        # what only the disk had is received again.
                        skip = handed_over
                        _truncate(part, handed_over)
                        have = handed_over
                    with part.open("ab") as sink:
                        for chunk in response.iter_bytes():
                            self.bytes_received += len(chunk)
                            if skip:
                                dropped = min(skip, len(chunk))
                                chunk, skip = chunk[dropped:], skip - dropped
                                if not chunk:
                                    continue
                            sink.write(chunk)
                            sink.flush()
                            have += len(chunk)
                            handed_over = have
                            yield chunk
                    return
            except (httpx.TransportError, ServerUnreachable) as e:
                cuts += 1
                log.info("download of %s cut at %d bytes (%s)", path, have, e)
                if cuts > self._max_resumes:
                    raise DownloadInterrupted(
                        f"{path} cut {cuts} times; {have} bytes kept for the next try"
                    ) from e


def _replay(part: Path, start: int) -> Iterator[bytes]:
    if not part.exists():
        return
    with part.open("rb") as source:
        source.seek(start)
        while chunk := source.read(_CHUNK):
            yield chunk


def _truncate(part: Path, size: int) -> None:
    if part.exists():
        with part.open("r+b") as handle:
            handle.truncate(size)


def _check_range(response: httpx.Response, have: int) -> None:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None or int(match.group(1)) != have:
        raise exceptions.DownloadError(
            f"server answered range {response.headers.get('Content-Range')!r} for bytes={have}-"
        )
