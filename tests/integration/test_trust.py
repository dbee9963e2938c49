"""HTTPS trust: the operating system's certificate store through truststore (on Linux it
follows OpenSSL's ``SSL_CERT_FILE``), the bundle ``REQUESTS_CA_BUNDLE`` names, certifi's
where truststore cannot load; and the certificate message says where the authority must be.
A sandbox behind an HTTPS front whose self-signed certificate nothing else trusts."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
import truststore

from ossdesk.core import transport
from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError
from tests.support.proxy import https_front, make_certificate
from tests.support.sandbox import SandboxInfo

_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
         "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def https_sandbox(sandbox: SandboxInfo, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = make_certificate(tmp_path)
    with https_front(int(sandbox.endpoint.rsplit(":", 1)[1]), cert, key) as url:
        yield url, cert


def _put(sb: SandboxInfo, url: str) -> None:
    with OssClient(Endpoint(url, sb.bucket, sb.region),
                   Credentials(sb.access_key_id, sb.access_key_secret)) as client:
        client.put_object("tls.txt", b"hello", size=5)
        assert client.get_object_bytes("tls.txt") == b"hello"


def test_the_context_is_truststores_else_certifis(
        env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    context, kind = transport.trust_context()
    assert kind == "system" and isinstance(context, truststore.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname

    env.setitem(sys.modules, "truststore", None)  # as where it cannot be imported
    context, kind = transport.trust_context()
    assert kind == "certifi" and not isinstance(context, truststore.SSLContext)
    certs = Path(certifi.where()).read_text().count("BEGIN CERTIFICATE")
    assert len(context.get_ca_certs()) == certs > 50
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname

    cert, _key = make_certificate(tmp_path)
    context, kind = transport.trust_context(str(cert))
    assert kind == "bundle" and len(context.get_ca_certs()) == 1


def test_a_ca_trusted_through_ssl_cert_file_is_trusted_through_the_system_store(
        sandbox: SandboxInfo, https_sandbox: tuple[str, Path], env: pytest.MonkeyPatch) -> None:
    url, cert = https_sandbox
    with pytest.raises(OssError) as err:
        _put(sandbox, url)
    assert err.value.code == "CertificateNotTrusted" and not err.value.retryable
    assert "must be installed on this computer" in err.value.message
    env.setenv("SSL_CERT_FILE", str(cert))
    _put(sandbox, url)


def test_a_ca_trusted_through_the_bundle_variable(
        sandbox: SandboxInfo, https_sandbox: tuple[str, Path], env: pytest.MonkeyPatch) -> None:
    url, cert = https_sandbox
    env.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # a bundle without this authority
    with pytest.raises(OssError) as err:
        _put(sandbox, url)
    assert err.value.code == "CertificateNotTrusted"
    assert "must be in the file REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) names" in str(err.value)
    env.setenv("REQUESTS_CA_BUNDLE", str(cert))
    _put(sandbox, url)


def test_where_truststore_cannot_load_the_message_names_the_bundle_variable(
        sandbox: SandboxInfo, https_sandbox: tuple[str, Path], env: pytest.MonkeyPatch) -> None:
    url, cert = https_sandbox
    env.setitem(sys.modules, "truststore", None)
    env.setenv("SSL_CERT_FILE", str(cert))  # certifi's bundle is used, not this
    with pytest.raises(OssError) as err:
        _put(sandbox, url)
    assert err.value.code == "CertificateNotTrusted"
    assert "name a file with its certificate authority in REQUESTS_CA_BUNDLE" in str(err.value)
