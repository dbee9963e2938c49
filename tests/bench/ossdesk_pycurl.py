"""``ossdesk`` with pycurl (libcurl) under oss2 instead of urllib3, to measure the other
candidate for the one HTTP stack side by side (docs/BENCHMARKS.md, "One HTTP stack").

    python -m tests.bench.ossdesk_pycurl upload FILE ...      (needs ``pip install pycurl``)

For the benchmark only: plain http, no proxy, no answer deadline; one curl handle per thread
(libcurl keeps its connection alive), the body read from the engine's part reader in
libcurl's read callback, the answer collected whole (OSS answers to uploads are small).
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from typing import Any

import oss2.exceptions
import oss2.http
import pycurl  # type: ignore[import-untyped,import-not-found,unused-ignore]
from requests.structures import CaseInsensitiveDict

from ossdesk.cli import main
from ossdesk.core import transport
from tests.bench import ossdesk_wan  # noqa: F401 - the WAN addresses count as local

_local = threading.local()


class _Answer:
    def __init__(self, status: int, headers: CaseInsensitiveDict[str], body: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self._body = body

    def iter_content(self, size: int) -> Iterator[bytes]:
        body, self._body = self._body, b""
        for start in range(0, len(body), size):
            yield body[start:start + size]


class CurlSession:
    def __init__(self, url: str, *, pool_size: int = 16, answer_for: Any = None) -> None:
        self.proxy = None
        self.trust = None
        self.answer_for = answer_for

    def _handle(self) -> Any:
        curl = getattr(_local, "curl", None)
        if curl is None:
            curl = _local.curl = pycurl.Curl()
        else:
            curl.reset()
        return curl

    def do_request(self, req: oss2.http.Request, timeout: Any) -> oss2.http.Response:
        url = req.url
        if req.params:
            query = transport._query(req.params)
            if query:
                url += ("&" if "?" in url else "?") + query
        curl = self._handle()
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.CUSTOMREQUEST, req.method)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, int(connect * 1000))
        curl.setopt(pycurl.LOW_SPEED_LIMIT, 1)
        curl.setopt(pycurl.LOW_SPEED_TIME, int(read))
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.TCP_NODELAY, 1)
        curl.setopt(pycurl.UPLOAD_BUFFERSIZE, transport.BLOCKSIZE)
        headers = [f"{k}: {v}" for k, v in req.headers.items() if v is not None]
        headers.append("Expect:")
        data = req.data
        if req.method == "HEAD":
            curl.setopt(pycurl.NOBODY, 1)
        if data is not None:
            curl.setopt(pycurl.UPLOAD, 1)
            curl.setopt(pycurl.INFILESIZE_LARGE, len(data))
            if isinstance(data, bytes):
                data = io.BytesIO(data)
            curl.setopt(pycurl.READFUNCTION, data.read)
        elif req.method in ("PUT", "POST"):
            curl.setopt(pycurl.UPLOAD, 1)
            curl.setopt(pycurl.INFILESIZE_LARGE, 0)
            curl.setopt(pycurl.READFUNCTION, io.BytesIO(b"").read)
        curl.setopt(pycurl.HTTPHEADER, headers)
        got = CaseInsensitiveDict[str]()

        def header(line: bytes) -> None:
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                got[name.strip()] = value.strip()
            elif line.startswith(b"HTTP/"):
                got.clear()

        body = io.BytesIO()
        curl.setopt(pycurl.HEADERFUNCTION, header)
        curl.setopt(pycurl.WRITEDATA, body)
        try:
            curl.perform()
        except pycurl.error as exc:
            raise oss2.exceptions.RequestError(ConnectionError(str(exc))) from exc
        status = int(curl.getinfo(pycurl.RESPONSE_CODE))
        return oss2.http.Response(_Answer(status, got, body.getvalue()))

    def close(self) -> None:
        pass


transport.Session = CurlSession  # type: ignore[misc,assignment]

if __name__ == "__main__":
    sys.exit(main())
