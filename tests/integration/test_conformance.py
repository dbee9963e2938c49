"""The differential check (``python -m tests.conformance``) against the sandbox.

Against two sandboxes it must find every answer the same; against a sandbox that deviates (a
benchmark mode that changes ETags, a fault that changes one header) it must say where.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import oss2

from tests.conformance.cases import CASES
from tests.conformance.client import Target, env_names
from tests.conformance.compare import CLEANUP_LABEL, Row, compare, render
from tests.support.sandbox import SandboxInfo

REPO = Path(__file__).resolve().parents[2]


def _target(info: SandboxInfo, side: str) -> Target:
    return Target(name=side, endpoint=info.endpoint, bucket=info.bucket, region=info.region,
                  access_key_id=info.access_key_id, access_key_secret=info.access_key_secret)


def _left_behind(info: SandboxInfo) -> list[str]:
    bucket = info.bucket_client()
    keys = [o.key for o in oss2.ObjectIterator(bucket, prefix="ossdesk-conformance/")]
    uploads = [u.key for u in oss2.MultipartUploadIterator(bucket, prefix="ossdesk-conformance/")]
    return keys + uploads


def _by_request(rows: list[Row]) -> dict[str, Row]:
    return {row.request: row for row in rows}


def test_two_sandboxes_answer_every_request_alike(
    sandbox_factory: Callable[..., SandboxInfo],
) -> None:
    a, b = sandbox_factory(), sandbox_factory()

    rows = compare(_target(a, "A"), _target(b, "B"))

    different = [f"{row.request}: {row.a} / {row.b}" for row in rows if not row.same]
    assert different == []
    # Every case ran to its end: none stopped on an error of its own.
    assert not [row.request for row in rows if row.request.endswith(": stopped")]
    cases_seen = {row.request.split(":", 1)[0] for row in rows}
    assert cases_seen == {case.name for case in CASES} | {"clean-up"}
    assert len(rows) > 100
    cleanup = _by_request(rows)[CLEANUP_LABEL]
    assert str(cleanup.a) == str(cleanup.b) == "left=0"
    assert _left_behind(a) == [] and _left_behind(b) == []
    table = render(rows, _target(a, "A"), _target(b, "B"))
    assert table.rstrip().endswith(f"{len(rows)} requests: {len(rows)} same, 0 different")


def test_a_sandbox_whose_etags_differ_is_reported(
    sandbox_factory: Callable[..., SandboxInfo],
) -> None:
    faithful = sandbox_factory()
    fast = sandbox_factory(fast_etag=True)  # a benchmark mode: ETags not MD5s

    rows = _by_request(compare(_target(faithful, "A"), _target(fast, "B")))

    put = rows["objects: PutObject"]
    assert put.differing == ["etag"]
    assert put.verdict == "different: etag"
    assert "etag" in rows["multipart: CompleteMultipartUpload"].differing
    # What the mode leaves alone still agrees: CRC-64s, errors, listings, signatures.
    for request in ("digests: PutObject wrong Content-MD5",
                    "multipart-too-small: CompleteMultipartUpload with a small first part",
                    "list-objects: ListObjects delimiter=/ max-keys=3 page 1",
                    "signatures: signed URL V4 expired", CLEANUP_LABEL):
        assert rows[request].same, rows[request]


def test_one_wrong_header_is_reported_on_its_request_only(
    sandbox_factory: Callable[..., SandboxInfo],
) -> None:
    a, b = sandbox_factory(), sandbox_factory()
    assert b.server is not None
    b.server.faults.corrupt("crc64", method="GET", pattern=r"/range\.bin\?", count=None)

    rows = compare(_target(a, "A"), _target(b, "B"), [c for c in CASES if c.name == "ranges"])

    different = {row.request: row.differing for row in rows if not row.same}
    assert different
    assert set(different) <= {row.request for row in rows if row.request.startswith(
        "ranges: GET Range")}
    assert all(fields == ["x-oss-hash-crc64ecma"] for fields in different.values())
    assert rows[0].request == "ranges: PutObject 1000 bytes" and rows[0].same


def test_the_command_takes_each_side_from_the_environment(
    sandbox_factory: Callable[..., SandboxInfo], tmp_path: Path,
) -> None:
    a, b = sandbox_factory(), sandbox_factory(fast_etag=True)
    env = dict(os.environ)
    for side, info in (("A", a), ("B", b)):
        names = env_names(side)
        env.update({names["key_id"]: info.access_key_id, names["secret"]: info.access_key_secret,
                    names["bucket"]: info.bucket, names["region"]: info.region})
    table = tmp_path / "table.md"

    def run(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tests.conformance", *args], cwd=REPO, env=environ,
            capture_output=True, text=True, timeout=120, check=False)

    same = run("--a", a.endpoint, "--b", a.endpoint, "--only", "objects", environ=env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.rstrip().splitlines()[-1].endswith("same, 0 different")
    assert a.access_key_secret not in same.stdout + same.stderr

    deviating = run("--a", a.endpoint, "--b", b.endpoint, "--only", "objects",
                    "--output", str(table), environ=env)
    assert deviating.returncode == 1, deviating.stdout + deviating.stderr
    assert "| objects: PutObject |" in table.read_text(encoding="utf-8")
    assert "different: etag" in deviating.stdout

    # "sandbox" is a sandbox started by the command itself, with its own account.
    own = run("--a", "sandbox", "--b", a.endpoint, "--only", "digests", environ=env)
    assert own.returncode == 0, own.stdout + own.stderr
    assert own.stdout.splitlines()[0].startswith("A: http://127.0.0.1:")

    del env[env_names("B")["secret"]]
    missing = run("--a", a.endpoint, "--b", b.endpoint, environ=env)
    assert missing.returncode == 2
    assert "OSSDESK_CONF_B_SECRET" in missing.stderr
