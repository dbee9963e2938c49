"""Shared helpers of the reliability tests: files, child processes, store and log readers."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ossdesk import config
from ossdesk.core.checksum import crc64, crc64_file
from tests.support.sandbox import SandboxInfo, read_access_log

KiB = 1024
MiB = 1024 * KiB


def write_random(path: Path, size: int, seed: int = 0) -> Path:
    """``size`` seeded pseudo-random bytes at ``path`` (no two files or parts alike)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{seed}:{path.name}:{size}")
    with path.open("wb") as fh:
        left = size
        while left > 0:
            n = min(left, MiB)
            fh.write(rng.randbytes(n))
            left -= n
    return path


def cli_env(sb: SandboxInfo, **extra: str) -> dict[str, str]:
    """The environment of an ``ossdesk`` child: this test's OSSDESK_HOME and the sandbox's
    credentials (never on the command line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSS_")}
    env.update({"OSS_ACCESS_KEY_ID": sb.access_key_id,
                "OSS_ACCESS_KEY_SECRET": sb.access_key_secret, "PYTHONUNBUFFERED": "1"})
    if sb.security_token:
        env["OSS_SESSION_TOKEN"] = sb.security_token
    env.update(extra)
    return env


def dest(sb: SandboxInfo) -> list[str]:
    return ["--endpoint", sb.endpoint, "--bucket", sb.bucket, "--region", sb.region]


def ossdesk(*args: str, env: dict[str, str], timeout: float = 120,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ossdesk", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False, cwd=cwd)


def spawn(args: Sequence[str], env: dict[str, str], out: TextIO,
          err: TextIO | int | None = None) -> subprocess.Popen[bytes]:
    """An ``ossdesk`` child writing to files (a pipe nobody reads could block it)."""
    return subprocess.Popen([sys.executable, "-m", "ossdesk", *args], stdout=out,
                            stderr=err if err is not None else subprocess.STDOUT, env=env)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def wait_until(cond: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.01) -> None:
    """Poll ``cond`` (a state in another process or thread) until true."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------ the store


@dataclass(frozen=True)
class StoreSnapshot:
    rows: list[dict[str, Any]]
    confirmed: set[tuple[str, int]]  # (upload id, part number) recorded as confirmed

    def by_source(self) -> dict[str, dict[str, Any]]:
        return {r["source"]: r for r in self.rows}


def snapshot_store(db: Path) -> StoreSnapshot:
    """What the checkpoint database holds now (read with plain sqlite3, nothing else running)."""
    if not db.exists():
        return StoreSnapshot([], set())
    conn = sqlite3.connect(db)
    try:
        conn.row_factory = sqlite3.Row
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "uploads" not in tables:
            return StoreSnapshot([], set())
        rows = [dict(r) for r in conn.execute("SELECT * FROM uploads ORDER BY position")]
        confirmed = {(r[0], r[1]) for r in conn.execute(
            "SELECT u.upload_id, p.number FROM parts p JOIN uploads u ON u.id = p.upload")}
    finally:
        conn.close()
    return StoreSnapshot(rows, confirmed)


def upload_killed_after_parts(sb: SandboxInfo, path: Path, out: Path, part_size: int,
                              parts: int = 3) -> StoreSnapshot:
    """A real ``ossdesk upload`` of ``path`` (one part at a time, 512 KiB/s) SIGKILLed once
    ``parts`` parts are confirmed; what its checkpoint database holds after the kill."""
    db = config.paths().database
    with out.open("w") as fh:
        child = spawn(["upload", str(path), *dest(sb), "--part-size", str(part_size),
                       "--parallel", "1", "--limit-rate", "512KiB"], cli_env(sb), fh)
        try:
            wait_until(lambda: len(snapshot_store(db).confirmed) >= parts, 60,
                       f"{parts} confirmed parts")
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    return snapshot_store(db)


# ------------------------------------------------------------------------- the sandbox log


@dataclass(frozen=True)
class PartPut:
    line: int
    upload_id: str
    number: int
    status: int
    received: int


def part_puts(log_path: Path) -> list[PartPut]:
    """Every UploadPart request in the sandbox's access log, in order."""
    out = []
    for i, row in enumerate(read_access_log(log_path)):
        if row["method"] != "PUT":
            continue
        number = re.search(r"(?:^|&)partNumber=(\d+)", row["query"])
        upload_id = re.search(r"(?:^|&)uploadId=([^&]+)", row["query"])
        if number and upload_id:
            out.append(PartPut(i, upload_id.group(1), int(number.group(1)), row["status"],
                               row["received"]))
    return out


def body_requests(log_path: Path) -> list[dict[str, Any]]:
    """Requests that carried object bytes (PutObject / UploadPart) or created uploads."""
    return [r for r in read_access_log(log_path)
            if r["method"] in ("PUT", "POST") and not r["path"].startswith("/-/")]


def object_bytes(sb: SandboxInfo, key: str) -> tuple[bytes, int | None]:
    """(body, server CRC64 header) of GetObject."""
    result = sb.bucket_client(enable_crc=False).get_object(key)
    try:
        data = bytes(result.read())
        header = result.headers.get("x-oss-hash-crc64ecma")
    finally:
        result.close()
    return data, int(header) if header else None


def assert_uploaded(sb: SandboxInfo, key: str, path: Path) -> None:
    """The object equals the file: length, bytes, and the server's CRC64 of it."""
    data, server_crc = object_bytes(sb, key)
    want = crc64_file(path)
    assert len(data) == path.stat().st_size, key
    assert crc64(data) == want, key
    assert server_crc == want, key
    assert data == path.read_bytes(), key


def remote_uploads(sb: SandboxInfo) -> list[Any]:
    return list(sb.bucket_client().list_multipart_uploads().upload_list)


def object_keys(sb: SandboxInfo, prefix: str = "") -> list[str]:
    return sorted(o.key for o in sb.bucket_client().list_objects(
        prefix=prefix, max_keys=1000).object_list)
