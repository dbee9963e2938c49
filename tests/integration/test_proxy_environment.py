"""The client reads the proxy and CA-bundle variables once, when it is made, and follows
them as ``requests`` would: through ``HTTP_PROXY`` unless ``NO_PROXY`` names the host; HTTPS
verified against the system's or the named CA bundle."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError
from tests.support.sandbox import SandboxInfo

_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
               "all_proxy", "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


class _Proxy(http.server.BaseHTTPRequestHandler):
    """Records the request line and refuses, as a proxy that denies the request would."""

    seen: ClassVar[list[str]] = []

    def _deny(self) -> None:
        type(self).seen.append(f"{self.command} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"denied by the proxy"
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = _deny

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    _Proxy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _client(info: SandboxInfo) -> OssClient:
    return OssClient(Endpoint(info.endpoint, info.bucket, info.region, "v4"),
                     Credentials(info.access_key_id, info.access_key_secret))


def test_requests_go_through_the_proxy_the_environment_names(
        sandbox: SandboxInfo, proxy: str, clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("HTTP_PROXY", proxy)
    with _client(sandbox) as client, pytest.raises(OssError):
        client.put_object("via-proxy.txt", b"hello", size=5)
    assert _Proxy.seen, "the request did not reach the proxy"
    assert _Proxy.seen[0].startswith(f"PUT {sandbox.endpoint}/")


def test_no_proxy_sends_the_requests_directly(
        sandbox: SandboxInfo, proxy: str, clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("HTTP_PROXY", proxy)
    clean_environment.setenv("NO_PROXY", "127.0.0.1,localhost")
    with _client(sandbox) as client:
        result = client.put_object("direct.txt", b"hello", size=5)
        assert client.head_object("direct.txt") is not None
    assert result.crc64 is not None
    assert _Proxy.seen == []


def test_the_environment_is_read_when_the_client_is_made(
        sandbox: SandboxInfo, proxy: str, clean_environment: pytest.MonkeyPatch) -> None:
    with _client(sandbox) as client:
        clean_environment.setenv("HTTP_PROXY", proxy)  # too late for this client
        client.put_object("made-before.txt", b"hello", size=5)
    assert _Proxy.seen == []


def test_a_ca_bundle_variable_is_kept(
        sandbox: SandboxInfo, clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("REQUESTS_CA_BUNDLE", "/etc/ossdesk-test/ca.pem")
    with _client(sandbox) as client:
        assert client._session.bundle == "/etc/ossdesk-test/ca.pem"
    clean_environment.delenv("REQUESTS_CA_BUNDLE")
    with _client(sandbox) as client:
        assert client._session.bundle is None


@pytest.fixture
def trusted_https(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 whose certificate the returned CA file vouches for."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    server = http.server.HTTPServer(("127.0.0.1", 0), _Proxy)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_https_with_the_ca_bundle_the_environment_names(
        trusted_https: tuple[str, Path], clean_environment: pytest.MonkeyPatch) -> None:
    url, cert = trusted_https
    _Proxy.seen = []
    endpoint = Endpoint(url, "sandbox", "cn-hangzhou")
    with OssClient(endpoint, Credentials("id", "secret-secret")) as client, \
            pytest.raises(OssError) as err:
        client.put_object("tls.txt", b"hello", size=5)
    assert err.value.code == "CertificateNotTrusted"
    assert _Proxy.seen == []  # nothing was sent
    clean_environment.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with OssClient(endpoint, Credentials("id", "secret-secret")) as client, \
            pytest.raises(OssError) as err:
        client.put_object("tls.txt", b"hello", size=5)
    # The handshake passed: what failed is the server's answer (this one refuses all).
    assert err.value.code != "CertificateNotTrusted", err.value
    assert _Proxy.seen == ["PUT /sandbox/tls.txt"]
