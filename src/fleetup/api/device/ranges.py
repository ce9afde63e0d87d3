"""Serving a blob with HTTP ``Range`` (``bytes=N-`` and ``bytes=N-M``), streamed in chunks."""

from __future__ import annotations

import re

from fastapi.responses import Response, StreamingResponse

from fleetup.releases.blobs import BlobStore, read_range

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def blob_response(
    store: BlobStore, sha256: str, range_header: str | None, *, media_type: str
) -> Response:
    """200 with the whole blob, 206 with the asked part, or 416 when it starts past the end."""
    total = store.size(sha256)
    start, end, status = 0, total - 1, 200
    match = _RANGE.fullmatch((range_header or "").strip())
    if match:
        start = int(match.group(1))
        if match.group(2):
            end = min(int(match.group(2)), total - 1)
        if start >= total or end < start:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{total}"})
        status = 206
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(max(end - start + 1, 0))}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{total}"
    body = read_range(store, sha256, start, end) if total else iter([b""])
    return StreamingResponse(body, status_code=status, headers=headers, media_type=media_type)
