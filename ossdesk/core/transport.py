"""The HTTP transport under ``oss2``: urllib3, with the operating system's trust store.

``oss2`` builds and signs every request and parses every answer; :class:`Session` carries
them, with or without a proxy, through one urllib3 pool manager per client:

* connections kept alive per ``scheme://host:port`` (up to the pool size); a connection the
  server closed while it was idle is noticed before reuse (urllib3), and an idempotent
  request (GET, HEAD, PUT, DELETE) whose body can be sent again goes once more on a new
  connection if the server closed a kept one without answering; nothing else is ever sent
  twice (the engine's backoff sees every failure);
* HTTP and HTTPS proxies (CONNECT for https endpoints) with ``user:password`` in the proxy
  address sent as ``Proxy-Authorization`` (never logged, never stored), as the environment
  names them (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, read once);
* TLS verified against the operating system's certificate store through ``truststore``
  (so a company CA installed in Windows or macOS is trusted), or the bundle
  ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` names, or certifi's where truststore cannot
  load;
* a connect timeout, a read timeout for each receive, and an **answer deadline**: from the
  moment the body is sent, the whole head of the answer must be in by then (a server that
  answers a byte at a time is cut too);
* bodies sent in 1 MiB blocks with a ``Content-Length``; an exception from the body's own
  ``read`` is not wrapped, so a local read error is not taken for a network one;
* answers whose framing breaks HTTP/1.1 (a ``Content-Length`` such as ``1_0``, ``+10`` or
  ``10, 3``, a chunk size that is not hexadecimal digits) are refused as :class:`BadAnswer`;
  a request target with a control character is refused as :class:`BadTarget` before
  anything is sent.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import http.client
import itertools
import os
import re
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import certifi
import oss2.exceptions
import oss2.http
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.response
import urllib3.util

__all__ = ["BadAnswer", "BadTarget", "NoAnswerInTime", "Session", "environment",
           "trust_context"]

BLOCKSIZE = 1024 * 1024
"""Bytes read from a request body per socket write."""

_PRELOAD = 64 * 1024  # answers up to this size are read at once (oss2 leaves some unread)
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_DIGITS = re.compile(rb"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")  # what urlencode leaves as it is
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_BAD_HEADER = re.compile(r"[\r\n\x00]")
_BAD_NAME = re.compile(r"[\r\n\x00:]")
_MAX_CHUNK_LINE = 1024


class BadAnswer(urllib3.exceptions.ProtocolError):
    """The server's answer breaks HTTP/1.1 framing (a malformed length or chunk size)."""


class BadTarget(ValueError):
    """The request target holds a control character or a space, or a header a line break:
    refused before anything is sent."""


class NoAnswerInTime(TimeoutError):
    """The head of the answer was not in by the answer deadline."""


# --- the answer deadline ---------------------------------------------------------------------


class _Alarm:
    __slots__ = ("done", "fired", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.done = False
        self.fired = False


class _Watchdog:
    """One thread that cuts the connections whose answer deadline has passed (shutting
    their socket down wakes the thread waiting for the answer)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, seconds: float) -> _Alarm:
        alarm = _Alarm(sock)
        with self._cond:
            heapq.heappush(self._heap, (self.clock() + seconds, next(self._seq), alarm))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ossdesk-deadlines",
                                                daemon=True)
                self._thread.start()
            if self._heap[0][2] is alarm:
                self._cond.notify()
        return alarm

    def cancel(self, alarm: _Alarm) -> bool:
        """Disarm; False if the alarm has already fired."""
        with self._cond:
            alarm.done = True
            return not alarm.fired

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                left = self._heap[0][0] - self.clock()
                if left > 0:
                    self._cond.wait(left)
                    continue
                alarm = heapq.heappop(self._heap)[2]
                alarm.done = alarm.fired = True
                # The plain socket's shutdown (an SSLSocket's would drop its TLS state).
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(alarm.sock, socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()
_local = threading.local()  # .wait: the answer deadline of this thread's request


class _StrictResponse(urllib3.response.HTTPResponse):
    """urllib3's answer, refusing chunk sizes that are not hexadecimal digits (``int()``
    alone takes ``-5``, ``+5`` and ``5_0``)."""

    def _update_chunk_length(self) -> None:
        if self.chunk_left is not None:
            return
        assert self._fp is not None
        line = self._fp.fp.readline(_MAX_CHUNK_LINE + 1)
        if len(line) > _MAX_CHUNK_LINE:
            self.close()
            raise BadAnswer("a chunk size line is too long")
        if not line:
            self.close()
            raise urllib3.exceptions.ProtocolError("Response ended prematurely")
        size = line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size):
            self.close()
            raise BadAnswer(f"a chunk size is not a hexadecimal number: {size[:20]!r}")
        self.chunk_left = int(size, 16)


def _checked(response: urllib3.response.HTTPResponse) -> urllib3.response.HTTPResponse:
    lengths = response.headers.getlist("content-length")
    if lengths:
        values = {part.strip() for value in lengths for part in value.split(",")}
        if not all(_DIGITS.fullmatch(v.encode("latin-1", "replace")) for v in values) or len(
                {int(v) for v in values}) > 1:
            shown = ", ".join(lengths)[:40]
            response.close()
            raise BadAnswer(f"the answer's Content-Length is not one number: {shown!r}")
    if response.chunked:
        response.__class__ = _StrictResponse
    return response


def _answer(conn: urllib3.connection.HTTPConnection,
            get: Callable[[], urllib3.response.HTTPResponse]) -> urllib3.response.HTTPResponse:
    """The answer's head, within the answer deadline of this thread's request."""
    wait: float | None = getattr(_local, "wait", None)
    sock = conn.sock
    if wait is None or not isinstance(sock, socket.socket):
        return _checked(get())
    idle = conn.timeout
    conn.timeout = wait if idle is None else min(wait, idle)
    alarm = _WATCHDOG.arm(sock, wait)
    try:
        response = get()
    except (OSError, http.client.HTTPException) as exc:
        if not _WATCHDOG.cancel(alarm) or isinstance(exc, TimeoutError):
            raise NoAnswerInTime("no answer in time") from exc
        raise
    finally:
        conn.timeout = idle
    if not _WATCHDOG.cancel(alarm):
        response.close()
        raise NoAnswerInTime("no answer in time")
    if conn.sock is not None:
        conn.sock.settimeout(idle)  # reading the body: the read timeout again
    return _checked(response)


_opened: dict[tuple[str, int | None], int] = {}  # connections made, by host and port
_opened_lock = threading.Lock()


def _count(conn: urllib3.connection.HTTPConnection) -> None:
    with _opened_lock:
        _opened[(conn.host, conn.port)] = _opened.get((conn.host, conn.port), 0) + 1


class _Connection(urllib3.connection.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _count(self)

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        return _answer(self, super().getresponse)


class _TlsConnection(urllib3.connection.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _count(self)

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        return _answer(self, super().getresponse)


class _Pool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


# --- trust and proxies -----------------------------------------------------------------------


def trust_context(bundle: str | None = None) -> tuple[ssl.SSLContext, str]:
    """The TLS context for https endpoints and what it trusts: ``"system"`` (the operating
    system's store, through truststore), ``"bundle"`` (the file or folder ``bundle``
    names) or ``"certifi"`` (where truststore cannot load)."""
    if bundle:
        folder = os.path.isdir(bundle)
        context = ssl.create_default_context(cafile=None if folder else bundle,
                                             capath=bundle if folder else None)
        kind = "bundle"
    else:
        try:
            import truststore

            context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            kind = "system"
        except Exception:  # noqa: BLE001 - not installed, or no usable store on this system
            context = ssl.create_default_context(cafile=certifi.where())
            kind = "certifi"
    context.set_alpn_protocols(["http/1.1"])
    return context, kind


def environment(url: str) -> tuple[str | None, str | None]:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY`` / ``HTTP_PROXY`` /
    ``ALL_PROXY``, or the system's proxy settings, unless ``NO_PROXY`` names the host) and
    the CA bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``)."""
    env = os.environ
    scheme = urlsplit(url).scheme.lower()
    proxies = urllib.request.getproxies()
    proxy = None if _bypassed(url, env) else (
        proxies.get(scheme) or proxies.get("all") or None)
    if proxy and "://" not in proxy:
        proxy = "http://" + proxy
    bundle = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or None
    return proxy, bundle


def _bypassed(url: str, env: Mapping[str, str]) -> bool:
    """Whether ``NO_PROXY`` (or the system's bypass list) names the host of ``url``:
    as requests decides it (host suffixes, ``*``, address ranges such as 10.0.0.0/8)."""
    import requests.utils  # its NO_PROXY rules only; requests carries no request here

    no_proxy = env.get("NO_PROXY") or env.get("no_proxy")
    return bool(requests.utils.should_bypass_proxies(url, no_proxy=no_proxy))


def _proxy_manager(proxy: str, **kw: Any) -> urllib3.ProxyManager:
    """A manager sending through ``proxy``; ``user:password`` in its address becomes the
    ``Proxy-Authorization`` header (and leaves the address, so it is never shown)."""
    parts = urllib3.util.parse_url(proxy)
    headers: dict[str, str] = {}
    if parts.auth:
        headers = urllib3.util.make_headers(proxy_basic_auth=unquote(parts.auth))
        parts = parts._replace(auth=None)
    return urllib3.ProxyManager(parts.url, proxy_headers=headers, **kw)


def proxy_shown(proxy: str | None) -> str | None:
    """The proxy's ``scheme://host:port``, without a user name or password."""
    if not proxy:
        return None
    parts = urllib3.util.parse_url(proxy)
    return f"{parts.scheme}://{parts.host}" + (f":{parts.port}" if parts.port else "")


# --- the session oss2 sends through ----------------------------------------------------------


def _query(params: Mapping[str, Any]) -> str:
    """oss2's parameters as a query string (None values left out, lists repeated, quoted
    as a form). Names and values made only of what a form leaves as it is (letters,
    digits, ``_.-~``: a part number, an upload id) are joined without quoting."""
    plain: list[str] = []
    for name, value in params.items():
        if value is None:
            continue
        text = str(value) if type(value) is int else value
        if type(name) is not str or type(text) is not str or not _PLAIN.fullmatch(
                name) or not _PLAIN.fullmatch(text):
            break
        plain.append(f"{name}={text}")
    else:
        return "&".join(plain)
    pairs: list[tuple[str, Any]] = []
    for name, value in params.items():
        values = [value] if isinstance(value, str | bytes) or not hasattr(
            value, "__iter__") else value
        pairs.extend((name, v) for v in values if v is not None)
    return urlencode(pairs)


def _no_answer(exc: BaseException) -> bool:
    """The server closed the connection without a word (a kept-alive one it had let go)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, http.client.RemoteDisconnected):
            return True
        nested = [a for a in seen.args if isinstance(a, BaseException)]
        seen = nested[0] if nested else seen.__cause__
    return False


class Session:
    """What ``oss2.Bucket`` sends its requests through (it calls :meth:`do_request`).

    ``url``: the endpoint (its proxy and CA bundle are looked up once, here);
    ``answer_for``: the answer deadline for a body of that many bytes (``Timeouts``).
    """

    def __init__(self, url: str, *, pool_size: int = 16,
                 answer_for: Callable[[int], float] | None = None) -> None:
        self.proxy, self.bundle = environment(url)
        self.pool_size = pool_size
        self.answer_for = answer_for
        self.trust: str | None = None  # what the TLS context trusts, once it is made
        self._tls = urlsplit(url).scheme.lower() == "https"
        self._manager: urllib3.PoolManager | None = None
        self._lock = threading.Lock()
        self._timeouts: dict[tuple[float | None, float | None], urllib3.Timeout] = {}
        #: Without a proxy: the connection pool of each ``scheme://host:port`` seen, so that
        #: a request goes straight to it (urllib3's pool manager would parse the whole
        #: address and look the pool up again for every request).
        self._pools: dict[str, urllib3.connectionpool.HTTPConnectionPool] = {}

    @property
    def manager(self) -> urllib3.PoolManager:
        """The pool manager (made on the first request: the trust store is read then)."""
        manager = self._manager
        if manager is None:
            with self._lock:
                manager = self._manager
                if manager is None:
                    manager = self._manager = self._make_manager()
        return manager

    def _make_manager(self) -> urllib3.PoolManager:
        kw: dict[str, Any] = {"num_pools": 4, "maxsize": self.pool_size, "block": False,
                              "blocksize": BLOCKSIZE, "retries": False}
        if self._tls:
            kw["ssl_context"], self.trust = trust_context(self.bundle)
        if self.proxy and self.proxy.lower().startswith("https:"):
            kw["proxy_ssl_context"] = trust_context(self.bundle)[0]  # TLS to the proxy too
        manager = (_proxy_manager(self.proxy, **kw) if self.proxy
                   else urllib3.PoolManager(**kw))
        manager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}
        return manager

    @staticmethod
    def opened(url: str) -> int:
        """Connections opened so far (by any session) to ``url``'s host and port."""
        parts = urllib3.util.parse_url(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with _opened_lock:
            return _opened.get((parts.host or "", port), 0)

    def do_request(self, req: oss2.http.Request, timeout: Any) -> oss2.http.Response:
        url = req.url
        if req.params:
            query = _query(req.params)
            if query:
                url += ("&" if "?" in url else "?") + query
        if _BAD_TARGET.search(url):
            raise oss2.exceptions.RequestError(BadTarget(
                "the request's address holds a control character or a space"))
        headers = {k: str(v) for k, v in req.headers.items() if v is not None}
        # One look at all names and one at all values; which header it is, only if any.
        if _BAD_NAME.search("".join(headers)) or _BAD_HEADER.search("".join(headers.values())):
            name = next(n for n, v in headers.items()
                        if _BAD_NAME.search(n) or _BAD_HEADER.search(v))
            raise oss2.exceptions.RequestError(BadTarget(
                f"the header {name[:40]!r} holds a line break"))
        data = req.data
        length = len(data) if data is not None and hasattr(data, "__len__") else 0
        if data is not None:
            headers["Content-Length"] = str(length)
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        limits = self._timeouts.get((connect, read))
        if limits is None:
            limits = self._timeouts[(connect, read)] = urllib3.Timeout(connect=connect,
                                                                       read=read)
        opener, target = self._opener(url)
        _local.wait = self.answer_for(length) if self.answer_for is not None else None
        try:
            for attempt in (1, 2):
                try:
                    response = opener(
                        req.method, target, body=data, headers=headers, retries=False,
                        redirect=False, timeout=limits, preload_content=False,
                        decode_content=False)
                    break
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    if attempt == 1 and req.method in _IDEMPOTENT and _no_answer(exc) and (
                            data is None or isinstance(data, bytes)
                            or getattr(data, "rewind", lambda: False)()):
                        continue  # once more, on a new connection
                    raise oss2.exceptions.RequestError(exc) from exc
        finally:
            _local.wait = None
        return oss2.http.Response(_Answer(response))

    def _opener(self, url: str) -> tuple[Callable[..., urllib3.BaseHTTPResponse], str]:
        """What sends a request to ``url``, and the address it is given: without a proxy,
        the origin's own connection pool and the path with the query; through a proxy (or
        an address with a user name or a fragment) the pool manager and the whole address."""
        scheme, sep, rest = url.partition("://")
        end = len(rest)
        for mark in "/?":
            found = rest.find(mark)
            if found != -1 and found < end:
                end = found
        if self.proxy or not sep or "@" in rest[:end] or not rest[:end] or "#" in rest:
            return self.manager.urlopen, url
        origin = url[:len(scheme) + 3 + end]
        pool = self._pools.get(origin)
        if pool is None or pool.pool is None:  # not made yet, or closed (close(), evicted)
            pool = self.manager.connection_from_url(origin)
            self._pools[origin] = pool
        target = rest[end:]
        if not target.startswith("/"):
            target = "/" + target
        return functools.partial(pool.urlopen, assert_same_host=False), target

    def close(self) -> None:
        """Close the pooled connections (idempotent). A request after this opens new ones."""
        manager = self._manager
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            pool.close()
        if manager is not None:
            manager.clear()


class _Headers(urllib3.HTTPHeaderDict):
    """An answer's headers (urllib3's, case-insensitive), whose ``repr`` only counts them:
    oss2 formats every answer's headers into a DEBUG message with ``str.format`` before
    its logger (kept at WARNING) drops it, some 40 calls a request for urllib3's ``repr``."""

    def __repr__(self) -> str:
        return f"<{len(self)} headers>"


class _Answer:
    """What ``oss2.http.Response`` reads of an answer (``status_code``, ``headers``,
    ``iter_content``), with network errors as oss2's ``RequestError``. Small answers are
    read at once, so the connection goes back to the pool even when oss2 leaves the body
    unread (CompleteMultipartUpload's)."""

    def __init__(self, response: urllib3.response.BaseHTTPResponse) -> None:
        self.response = response
        self.status_code = response.status
        self.headers = headers = response.headers
        if type(headers) is urllib3.HTTPHeaderDict:
            headers.__class__ = _Headers
        self._body: bytes | None = None
        left = response.length_remaining
        if left is not None and left <= _PRELOAD:
            self._body = b"".join(self._stream(_PRELOAD))
        elif left is None and response.status >= 400:
            # A refusal ended by closing (a proxy's 407, say): the status is the answer; a
            # connection cut before the end of its text (the request body was not read)
            # does not hide it.
            got: list[bytes] = []
            try:
                for chunk in response.stream(_PRELOAD, decode_content=False):
                    got.append(chunk)
                    if sum(map(len, got)) >= _PRELOAD:
                        break
            except (urllib3.exceptions.HTTPError, OSError):
                pass
            response.close()
            self._body = b"".join(got)

    def _stream(self, size: int) -> Iterator[bytes]:
        response = self.response
        try:
            yield from response.stream(size, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            response.close()
            raise oss2.exceptions.RequestError(exc) from exc
        response.release_conn()

    def iter_content(self, size: int) -> Iterator[bytes]:
        if self._body is not None:
            body, self._body = self._body, b""
            for start in range(0, len(body), size):
                yield body[start:start + size]
            return
        yield from self._stream(size)

    def close(self) -> None:
        self.response.close()
