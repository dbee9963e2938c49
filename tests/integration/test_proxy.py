"""Requests through a real proxy (tinyproxy on 127.0.0.1): plain http forwarded, https
through CONNECT, Basic authentication from ``user:password`` in the proxy address (never
logged, never stored), ``NO_PROXY`` honoured. The proxy's own log shows it carried them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError
from tests.reliability.helpers import assert_uploaded, cli_env, ossdesk, write_random
from tests.support.proxy import Proxy, https_front, make_certificate, tinyproxy  # noqa: F401
from tests.support.sandbox import SandboxInfo

_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
               "all_proxy", "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
               "SSL_CERT_FILE")
PASSWORD = "pr0xy-Pa55word"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def https_sandbox(sandbox: SandboxInfo, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The sandbox behind an HTTPS front whose certificate only the returned file trusts."""
    cert, key = make_certificate(tmp_path)
    port = int(sandbox.endpoint.rsplit(":", 1)[1])
    with https_front(port, cert, key) as url:
        yield url, cert


def _client(sb: SandboxInfo, url: str | None = None) -> OssClient:
    return OssClient(Endpoint(url or sb.endpoint, sb.bucket, sb.region),
                     Credentials(sb.access_key_id, sb.access_key_secret))


def test_plain_http_goes_through_the_proxy(
        sandbox: SandboxInfo, tinyproxy: Callable[..., Proxy],  # noqa: F811
        env: pytest.MonkeyPatch) -> None:
    proxy = tinyproxy()
    env.setenv("HTTP_PROXY", proxy.url)
    with _client(sandbox) as client:
        client.put_object("one.txt", b"hello", size=5)
        assert client.get_object_bytes("one.txt") == b"hello"
        assert client.head_object("one.txt") is not None
    carried = proxy.carried()
    base = f"{sandbox.endpoint}/{sandbox.bucket}/one.txt"
    assert carried == [f"PUT {base}", f"GET {base}", f"HEAD {base}"]


def test_https_goes_through_the_proxy_with_connect(
        sandbox: SandboxInfo, https_sandbox: tuple[str, Path],
        tinyproxy: Callable[..., Proxy], env: pytest.MonkeyPatch) -> None:  # noqa: F811
    url, cert = https_sandbox
    proxy = tinyproxy()
    env.setenv("HTTPS_PROXY", proxy.url)
    env.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with _client(sandbox, url) as client:
        for i in range(3):
            client.put_object(f"tls/{i}.txt", b"x" * i, size=i)
        upload = client.initiate_multipart("tls/big.bin")
        part = client.upload_part("tls/big.bin", upload, 1, b"y" * 300_000, size=300_000)
        client.complete_multipart("tls/big.bin", upload, [(1, part.etag)])
        assert client.get_object_bytes("tls/big.bin", (0, 9)) == b"y" * 10
    # One tunnel carried all of them (kept alive through the proxy).
    assert proxy.carried() == [f"CONNECT 127.0.0.1:{url.rsplit(':', 1)[1]}"]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_authentication_from_the_address_is_sent_and_never_shown(
        scheme: str, sandbox: SandboxInfo, https_sandbox: tuple[str, Path],
        tinyproxy: Callable[..., Proxy], env: pytest.MonkeyPatch,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url, cert = https_sandbox
    endpoint = url if scheme == "https" else sandbox.endpoint
    variable = "HTTPS_PROXY" if scheme == "https" else "HTTP_PROXY"
    env.setenv("REQUESTS_CA_BUNDLE", str(cert))
    proxy = tinyproxy(user="alice", password=PASSWORD)
    env.setenv(variable, proxy.url)
    with _client(sandbox, endpoint) as client:
        client.put_object("auth.txt", b"hello", size=5)
    assert len(proxy.carried()) == 1

    env.setenv(variable, proxy.bare_url)  # no password: the proxy refuses
    with _client(sandbox, endpoint) as client, pytest.raises(OssError) as refused:
        client.put_object("auth.txt", b"hello", size=5)
    assert refused.value.code == "ProxyAuthenticationRequired"
    assert f"The proxy http://127.0.0.1:{proxy.port} refused the request" in str(refused.value)
    assert not refused.value.retryable

    env.setenv(variable, proxy.url.replace(PASSWORD, "wrong-password"))
    with _client(sandbox, endpoint) as client, pytest.raises(OssError) as wrong:
        client.put_object("auth.txt", b"hello", size=5)
    assert wrong.value.code == "ProxyAuthenticationRequired"
    assert "wrong-password" not in str(wrong.value)
    assert PASSWORD not in caplog.text and "wrong-password" not in caplog.text


def test_no_proxy_sends_directly(
        sandbox: SandboxInfo, tinyproxy: Callable[..., Proxy],  # noqa: F811
        env: pytest.MonkeyPatch) -> None:
    proxy = tinyproxy()
    env.setenv("HTTP_PROXY", proxy.url)
    env.setenv("NO_PROXY", "localhost,127.0.0.0/8")
    with _client(sandbox) as client:
        client.put_object("direct.txt", b"hello", size=5)
    env.setenv("NO_PROXY", "example.com")
    with _client(sandbox) as client:
        client.put_object("proxied.txt", b"hello", size=5)
    assert proxy.carried() == [f"PUT {sandbox.endpoint}/{sandbox.bucket}/proxied.txt"]


def test_a_proxy_that_is_not_there_is_named(
        sandbox: SandboxInfo, env: pytest.MonkeyPatch) -> None:
    from tests.support.proxy import free_port

    port = free_port()
    env.setenv("HTTP_PROXY", f"http://bob:{PASSWORD}@127.0.0.1:{port}")
    with _client(sandbox) as client, pytest.raises(OssError) as err:
        client.put_object("k.txt", b"hello", size=5)
    assert err.value.code == "ProxyFailed" and err.value.retryable
    assert f"The proxy http://127.0.0.1:{port} could not carry the request" in str(err.value)
    assert PASSWORD not in str(err.value) and PASSWORD not in err.value.reason


def test_an_https_proxy_is_reached_over_tls(
        sandbox: SandboxInfo, https_sandbox: tuple[str, Path],
        tinyproxy: Callable[..., Proxy], env: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The proxy itself behind TLS (https://PROXY): plain http forwarded through it, and an
    https endpoint through a CONNECT tunnel inside it; both trust the bundle named."""
    url, cert = https_sandbox
    proxy = tinyproxy()
    env.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with https_front(proxy.port, cert, cert.parent / "key.pem") as front:
        env.setenv("HTTP_PROXY", front)
        env.setenv("HTTPS_PROXY", front)
        with _client(sandbox) as client:
            client.put_object("plain.txt", b"hello", size=5)
        with _client(sandbox, url) as client:
            client.put_object("tunnel.txt", b"hello", size=5)
    assert proxy.carried() == [f"PUT {sandbox.endpoint}/{sandbox.bucket}/plain.txt",
                               f"CONNECT 127.0.0.1:{url.rsplit(':', 1)[1]}"]


def test_a_proxy_of_another_kind_is_refused_with_a_clear_message(
        sandbox: SandboxInfo, env: pytest.MonkeyPatch) -> None:
    env.setenv("HTTP_PROXY", f"socks5://bob:{PASSWORD}@127.0.0.1:1080")
    with _client(sandbox) as client, pytest.raises(OssError) as err:
        client.put_object("k.txt", b"hello", size=5)
    assert err.value.code == "ProxyNotSupported" and not err.value.retryable
    assert "not an http:// or https:// proxy" in err.value.message
    assert PASSWORD not in str(err.value)


def test_the_cli_uploads_through_an_authenticating_proxy_and_keeps_no_password(
        sandbox: SandboxInfo, https_sandbox: tuple[str, Path],
        tinyproxy: Callable[..., Proxy], tmp_path: Path,  # noqa: F811
        ossdesk_home: Path) -> None:
    url, cert = https_sandbox
    proxy = tinyproxy(user="alice", password=PASSWORD)
    source = write_random(tmp_path / "src" / "big.bin", 3 * 1024 * 1024 + 17)
    environ = cli_env(sandbox, HTTPS_PROXY=proxy.url, REQUESTS_CA_BUNDLE=str(cert),
                      OSSDESK_HOME=str(ossdesk_home))
    for name in ("HTTP_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy",
                 "ALL_PROXY", "all_proxy"):
        environ.pop(name, None)
    done = ossdesk("upload", str(source), "--endpoint", url, "--bucket", sandbox.bucket,
                   "--region", sandbox.region, "--part-size", "1MiB",
                   env=environ)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_uploaded(sandbox, "big.bin", source)
    assert proxy.carried() and all(line.startswith("CONNECT ") for line in proxy.carried())
    assert PASSWORD not in done.stdout + done.stderr
    stored = [p for p in ossdesk_home.rglob("*") if p.is_file()]
    assert stored, "the upload left no database"
    for path in stored:
        assert PASSWORD.encode() not in path.read_bytes(), path
