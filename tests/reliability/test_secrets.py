"""Nothing leaked: with a known AccessKey secret and STS token in use, neither appears in any
file ossdesk writes, any output, the sandbox's access log, an exception text, a log record,
the command line of the process, or the ``--json`` event stream. HTTPS certificates are
verified; plain http is accepted for loopback only, or when the caller confirms it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import logging
import socket
import ssl
import subprocess
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ossdesk.core.events import Done, Event, Paused
from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import NewUpload, Store
from ossdesk.core.upload import RetryPolicy
from ossdesk.sandbox.server import SandboxServer
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    dest,
    json_lines,
    ossdesk,
    part_puts,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo, read_access_log

AK = "LTAI5tReliabilityKeyId01"
SECRET = "RelSecret-7f3c9a1e5b2d48c6a0f1e2d3c4b5a697"
TOKEN = "STS.RelToken-CAIS8gF1q6Ft5B2yfSjIr5bN3iR3pQ9xVzYk2m4n6p8r0t"
TOKEN2 = "STS.RelToken-second-Hq2Lr9Wm4Xn7Yp1Zs3Tv5Uw8Vx0"
WRONG = "RelWrongSecret-00112233445566778899aabbccddeeff"


def needles(*values: str) -> dict[str, bytes]:
    """Each secret as it could appear: raw, %-encoded, base64."""
    out: dict[str, bytes] = {}
    for value in values:
        out[value] = value.encode()
        out[value + " (url-encoded)"] = quote(value, safe="").encode()
        out[value + " (base64)"] = base64.b64encode(value.encode())
    return out


def leaks(blob: bytes, where: str, values: dict[str, bytes]) -> list[str]:
    return [f"{name} in {where}" for name, needle in values.items() if needle in blob]


def files_under(folder: Path) -> Iterator[Path]:
    yield from (p for p in folder.rglob("*") if p.is_file())


def test_no_secret_or_token_anywhere(sandbox_factory: Any, tmp_path: Path,
                                     ossdesk_home: Path) -> None:
    sb: SandboxInfo = sandbox_factory(access_key_id=AK, access_key_secret=SECRET,
                                      security_token=TOKEN)
    assert sb.server is not None
    src = tmp_path / "src"
    small = write_random(src / "small.txt", 10)
    big = write_random(src / "big.bin", 5 * 128 * KiB + 3)
    outputs: list[tuple[str, bytes]] = []
    cmdlines: list[bytes] = []
    env = cli_env(sb)

    # 1. An upload (files + a folder), its command line read while it runs.
    out_file = tmp_path / "upload.out"
    err_file = tmp_path / "upload.err"
    hold = sb.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=1\b", count=1)
    with out_file.open("w") as out, err_file.open("w") as err:
        child = spawn(["upload", str(small), str(src), *dest(sb), "--prefix", "s/",
                       "--part-size", "128KiB", "--json"], env, out, err)
        try:
            cmdlines.append(Path(f"/proc/{child.pid}/cmdline").read_bytes())
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "a part")
            if child.poll() is None:
                cmdlines.append(Path(f"/proc/{child.pid}/cmdline").read_bytes())
            assert child.wait(120) == 0, err_file.read_text()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    outputs += [("upload stdout", out_file.read_bytes()), ("upload stderr", err_file.read_bytes())]
    events = json_lines(out_file.read_text())
    assert sum(1 for e in events if e["event"] == "done") == 3
    assert_uploaded(sb, "s/src/big.bin", big)

    # 2. The token expires in the middle of an upload: paused, then new credentials finish it.
    later = write_random(tmp_path / "later.bin", 8 * 128 * KiB)
    hold = sb.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=2\b", count=1)
    with (tmp_path / "x.out").open("w") as out, (tmp_path / "x.err").open("w") as err:
        child = spawn(["upload", str(later), *dest(sb), "--part-size", "128KiB", "--parallel",
                       "1", "--json"], env, out, err)
        try:
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "part 2")
            sb.server.faults.expire_token()
            code = child.wait(120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    expired_out = (tmp_path / "x.out").read_text()
    expired_err = (tmp_path / "x.err").read_text()
    outputs += [("expired stdout", expired_out.encode()), ("expired stderr", expired_err.encode())]
    assert code == 1, expired_err
    paused = [e for e in json_lines(expired_out) if e["event"] == "paused"]
    assert paused and paused[0]["reason"] == "credentials expired", expired_out
    sb.server.set_security_token(TOKEN2)
    sb.security_token = TOKEN2  # for the test's own checks
    resumed = ossdesk("resume", "--json", env={**env, "OSS_SESSION_TOKEN": TOKEN2})
    outputs += [("resume stdout", resumed.stdout.encode()),
                ("resume stderr", resumed.stderr.encode())]
    assert resumed.returncode == 0, resumed.stderr
    assert_uploaded(sb, "later.bin", later)

    # 3. A wrong secret: one clear error, and the wrong secret is not echoed either.
    wrong = ossdesk("upload", str(small), *dest(sb), env={**env, "OSS_ACCESS_KEY_SECRET": WRONG,
                                                          "OSS_SESSION_TOKEN": TOKEN2})
    outputs += [("wrong stdout", wrong.stdout.encode()), ("wrong stderr", wrong.stderr.encode())]
    assert wrong.returncode == 2 and "does not match" in wrong.stderr

    # 4. The status views.
    for args in (("status",), ("status", "--json")):
        result = ossdesk(*args, env=env)
        assert result.returncode == 0
        outputs.append((" ".join(args), (result.stdout + result.stderr).encode()))

    values = needles(SECRET, TOKEN, TOKEN2, WRONG)
    found: list[str] = []
    for name, blob in outputs:
        found += leaks(blob, name, values)
    for cmdline in cmdlines:
        found += leaks(cmdline, "/proc/PID/cmdline", values)
    assert any(b"upload" in c for c in cmdlines), cmdlines  # the right process was read
    written = list(files_under(ossdesk_home))
    assert any(p.name.startswith("ossdesk.sqlite3") for p in written)
    for path in written:
        found += leaks(path.read_bytes(), str(path.relative_to(ossdesk_home)), values)
    found += leaks(sb.log_path.read_bytes(), "the sandbox access log", values)
    assert found == []
    # The access log did record the traffic (the search above looked at something real).
    assert len(part_puts(sb.log_path)) >= 13


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _texts_of(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def test_exceptions_events_and_logs_hold_no_secret(sandbox_factory: Any, tmp_path: Path,
                                                   debug_logs: pytest.LogCaptureFixture) -> None:
    """Engine in-process, every logger at DEBUG, through retryable faults, a CRC lie, an
    expired token, a wrong secret, an unknown key id and a refused connection."""
    sb: SandboxInfo = sandbox_factory(access_key_id=AK, access_key_secret=SECRET,
                                      security_token=TOKEN)
    assert sb.server is not None
    faults = sb.server.faults
    texts: list[str] = []
    events: list[Event] = []
    creds = Credentials(AK, SECRET, TOKEN)
    store = Store.open()
    scheduler = Scheduler(store, credentials=lambda _s: creds, part_size=128 * KiB,
                          retry=RetryPolicy(tries=5, base=0.01, cap=0.05))
    scheduler.add_listener(events.append)
    try:
        path = write_random(tmp_path / "e.bin", 6 * 128 * KiB)
        st = path.stat()
        faults.fail(503, method="PUT", pattern=r"partNumber=2\b", count=2)
        faults.reset_after(1000, pattern=r"partNumber=3\b")
        faults.corrupt("crc64", method="PUT", pattern=r"partNumber=4\b")
        hold = faults.delay(0.5, method="PUT", pattern=r"partNumber=5\b")
        [upload] = scheduler.add([NewUpload(source=path, size=st.st_size, mtime_ns=st.st_mtime_ns,
                                            key="e.bin", endpoint=sb.endpoint, bucket=sb.bucket,
                                            region=sb.region)])
        wait_until(lambda: hold.hits > 0, 30, "part 5")
        faults.expire_token()
        wait_until(lambda: any(isinstance(e, Paused) for e in events), 30, "the pause")
        sb.server.set_security_token(TOKEN2)
        sb.security_token = TOKEN2
        scheduler.update_credentials("environment", Credentials(AK, SECRET, TOKEN2))
        assert scheduler.wait(60)
        assert any(isinstance(e, Done) for e in events), [e.kind for e in events]
        assert_uploaded(sb, "e.bin", path)
        row = store.get(upload)
        assert row is not None
        texts.append(repr(row))
    finally:
        scheduler.close()
        store.close()
    texts += [repr(e) for e in events]
    texts += [str(e.to_dict()) for e in events]

    endpoint = Endpoint(sb.endpoint, sb.bucket, sb.region)
    errors: list[OssError] = []
    for bad in (Credentials(AK, WRONG, TOKEN2), Credentials("LTAI5tUnknownKey", SECRET, TOKEN2),
                Credentials(AK, SECRET, TOKEN + "-stale")):
        client = OssClient(endpoint, bad)
        with pytest.raises(OssError) as info:
            client.put_object("x", b"data", size=4)
        errors.append(info.value)
    faults.fail(500, count=1)
    with pytest.raises(OssError) as info:
        OssClient(endpoint, Credentials(AK, SECRET, TOKEN2)).put_object("x", b"data", size=4)
    errors.append(info.value)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(OssError) as info:
        OssClient(Endpoint(f"http://127.0.0.1:{port}", sb.bucket, sb.region),
                  Credentials(AK, SECRET, TOKEN2)).put_object("x", b"data", size=4)
    errors.append(info.value)
    assert [e.code for e in errors] == ["SignatureDoesNotMatch", "InvalidAccessKeyId",
                                        "InvalidAccessKeyId", "InternalError",
                                        "ConnectionRefused"]
    texts += [_texts_of(e) for e in errors]

    records = debug_logs.records
    texts += [r.getMessage() for r in records]
    texts += [debug_logs.text]
    blob = "\n".join(texts).encode()
    values = needles(SECRET, TOKEN, TOKEN2, WRONG)
    assert leaks(blob, "exception texts, events and log records", values) == []
    for marker in (b"OSS4-HMAC-SHA256 Credential", b"x-oss-security-token", b"Signature="):
        assert marker not in blob
    assert records, "nothing was logged at all: the capture did not work"


# ------------------------------------------------------------------------- transport rules


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    pytest.importorskip("cryptography", reason="makes the test certificate (an oss2 dependency)")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _TlsListener:
    """An HTTPS port with an untrusted (self-signed) certificate that records what arrives."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.handshakes = 0
        self.received = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                self.received += tls.recv(65536)
        except (OSError, ssl.SSLError):
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self.sock.close()
        self._thread.join(10)


def test_https_certificate_is_verified(tmp_path: Path, sandbox: SandboxInfo) -> None:
    cert, key = _self_signed(tmp_path)
    listener = _TlsListener(cert, key)
    try:
        path = write_random(tmp_path / "t.bin", 10)
        result = ossdesk("upload", str(path), "--endpoint", f"https://127.0.0.1:{listener.port}",
                         "--bucket", "sandbox", "--region", "cn-hangzhou", env=cli_env(sandbox))
        client = OssClient(Endpoint(f"https://127.0.0.1:{listener.port}", "sandbox",
                                    "cn-hangzhou"), Credentials(AK, SECRET))
        with pytest.raises(OssError) as info:
            client.put_object("t.bin", b"secret data", size=11)
    finally:
        listener.close()
    assert result.returncode == 2, result.stderr
    assert "certificate" in result.stderr and "not trusted" in result.stderr
    assert "Traceback" not in result.stderr
    assert info.value.code == "CertificateNotTrusted"
    assert listener.connections >= 2  # they did connect...
    assert listener.handshakes == 0 and listener.received == b""  # ...and sent nothing


def _own_address() -> str | None:
    """A non-loopback IPv4 address of this machine (traffic to it stays on this host)."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False,
                             timeout=10).stdout
    except OSError:
        out = ""
    for item in out.split():
        try:
            addr = ipaddress.ip_address(item)
        except ValueError:
            continue
        if addr.version == 4 and not addr.is_loopback:
            return item
    return None


def test_plain_http_only_for_loopback_or_when_confirmed(tmp_path: Path,
                                                        sandbox: SandboxInfo) -> None:
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to listen on")
    log = tmp_path / "remote.log"
    server = SandboxServer(tmp_path / "remote", host=address, port=0, access_key_id=AK,
                           access_key_secret=SECRET, log_path=log)
    server.start()
    try:
        url = server.endpoint
        assert url.startswith(f"http://{address}:")
        path = write_random(tmp_path / "h.bin", 10)
        result = ossdesk("upload", str(path), "--endpoint", url, "--bucket", "sandbox",
                         "--region", "cn-hangzhou",
                         env={**cli_env(sandbox), "OSS_ACCESS_KEY_ID": AK,
                              "OSS_ACCESS_KEY_SECRET": SECRET})
        assert result.returncode == 2, result.stderr
        assert "plain http" in result.stderr and "Traceback" not in result.stderr
        assert read_access_log(log) == []  # refused before anything was sent
        endpoint = Endpoint(url, "sandbox", "cn-hangzhou")
        with pytest.raises(OssError) as info:
            OssClient(endpoint, Credentials(AK, SECRET))
        assert info.value.code == "InsecureEndpoint"
        assert read_access_log(log) == []
        # Confirmed explicitly: accepted.
        confirmed = OssClient(endpoint, Credentials(AK, SECRET), allow_insecure_http=True)
        confirmed.put_object("h.bin", b"0123456789", size=10)
        assert [r["method"] for r in read_access_log(log)] == ["PUT"]
        close = getattr(confirmed, "close", None)
        if callable(close):
            close()
    finally:
        server.stop()
