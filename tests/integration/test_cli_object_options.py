"""``ossdesk upload`` and ``ossdesk sync`` write objects with the ACL, headers, tags and
server-side encryption asked for (a single PUT and a multipart upload alike), and refuse a
bad value before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from ossdesk.core.plan import KiB
from tests.integration.test_cli_upload import cli_env, dest, ossdesk
from tests.integration.test_engine_upload import write_random
from tests.support.sandbox import SandboxInfo, read_access_log

OPTIONS = ["--acl", "public-read", "--content-type", "text/csv", "--cache-control",
           "max-age=600", "--content-disposition", "attachment", "--tags", "team=data",
           "--tags", "note=a%20b&stage=raw", "--sse", "KMS", "--kms-key-id", "key-9",
           "--meta", "origin=lab", "--storage-class", "IA"]


def assert_object(sb: SandboxInfo, key: str) -> None:
    bucket = sb.bucket_client()
    head = bucket.head_object(key).headers
    assert head["Content-Type"] == "text/csv"
    assert head["Cache-Control"] == "max-age=600"
    assert head["Content-Disposition"] == "attachment"
    assert head["x-oss-server-side-encryption"] == "KMS"
    assert head["x-oss-server-side-encryption-key-id"] == "key-9"
    assert head["x-oss-meta-origin"] == "lab"
    assert head["x-oss-storage-class"] == "IA"
    assert bucket.get_object_acl(key).acl == "public-read"
    assert bucket.get_object_tagging(key).tag_set.tagging_rule == {
        "team": "data", "note": "a b", "stage": "raw"}


def test_upload_sends_the_options_on_put_and_multipart(sandbox: SandboxInfo,
                                                       tmp_path: Path) -> None:
    small = write_random(tmp_path / "small.dat", 10 * KiB)
    big = write_random(tmp_path / "big.dat", 700 * KiB + 1)
    result = ossdesk("upload", str(small), str(big), *dest(sandbox), "--part-size", "256KiB",
                     *OPTIONS, env=cli_env(sandbox))
    assert result.returncode == 0, result.stderr
    assert "2 of 2 files uploaded and verified" in result.stdout
    assert_object(sandbox, "small.dat")
    assert_object(sandbox, "big.dat")
    assert sandbox.bucket_client().head_object("big.dat").headers["x-oss-object-type"] \
        == "Multipart"


def test_sync_sends_the_options(sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    write_random(folder / "r.dat", 3 * KiB)
    result = ossdesk("sync", str(folder), *dest(sandbox), "--prefix", "r", *OPTIONS,
                     env=cli_env(sandbox))
    assert result.returncode == 0, result.stderr
    assert_object(sandbox, "r/r.dat")
    # sync's own metadata is kept beside the user's
    assert "x-oss-meta-ossdesk-mtime-ns" in sandbox.bucket_client().head_object(
        "r/r.dat").headers


@pytest.mark.parametrize(("args", "message"), [
    (["--acl", "public"], "invalid choice: 'public'"),
    (["--tags", "team"], "object tag 'team': write KEY=VALUE"),
    (["--tags", "a=1&a=2"], "object tag key 'a' is given twice"),
    (["--tags", "k=semi;colon"], "holds ';'"),
    (["--tags", "&".join(f"k{i}=v" for i in range(11))], "OSS takes at most 10"),
    (["--kms-key-id", "key-9"], "a KMS key id is used only with KMS encryption"),
    (["--sse", "AES128"], "invalid choice: 'AES128'"),
    (["--cache-control", "max-age=1\r\nX-Evil: 1"], "line break"),
])
def test_bad_values_are_refused_before_anything_is_sent(sandbox: SandboxInfo, tmp_path: Path,
                                                        args: list[str], message: str) -> None:
    path = write_random(tmp_path / "f.dat", 10)
    before = len(read_access_log(sandbox.log_path))
    for command in (["upload", str(path)], ["sync", str(tmp_path)]):
        result = ossdesk(*command, *dest(sandbox), *args, env=cli_env(sandbox))
        assert result.returncode == 2, result.stderr
        assert message in result.stderr, result.stderr
    assert len(read_access_log(sandbox.log_path)) == before
