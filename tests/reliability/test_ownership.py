"""Verified means verified: ossdesk aborts only the multipart uploads it can prove are its own,
and leaves none of its own behind on the server for ever.

Real child processes (``ossdesk upload / resume / cancel / uploads``) against the sandbox;
other clients are plain ``oss2``.
"""

from __future__ import annotations

import re
from pathlib import Path

import oss2

from ossdesk import config
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    dest,
    ossdesk,
    remote_uploads,
    snapshot_store,
    write_random,
)
from tests.support.sandbox import SandboxInfo


def test_a_lost_initiate_never_aborts_another_clients_upload(sandbox: SandboxInfo,
                                                             tmp_path: Path) -> None:
    """ossdesk dies between Initiate and saving the upload id; meanwhile another client (plain
    oss2) runs its own multipart upload of the same key. The next start must leave that
    upload alone (it completes afterwards) and tell the user about the unknown ones."""
    path = write_random(tmp_path / "shared.bin", 3 * 100 * KiB + 7)
    env = cli_env(sandbox, OSSDESK_CRASH_AT="initiated")
    first = ossdesk("upload", str(path), *dest(sandbox), "--part-size", "100KiB",
                    "--parallel", "1", env=env)
    assert first.returncode == 137, first.stderr
    lost = [u.upload_id for u in remote_uploads(sandbox)]
    assert len(lost) == 1  # ours, but its id never reached the store

    other = sandbox.bucket_client()
    theirs = other.init_multipart_upload("shared.bin").upload_id
    part1 = other.upload_part("shared.bin", theirs, 1, b"a" * (100 * KiB))

    del env["OSSDESK_CRASH_AT"]
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_uploaded(sandbox, "shared.bin", path)
    # The user is told, once, which unknown uploads were left and how to see them.
    notes = [line for line in result.stdout.splitlines() if "left alone" in line]
    assert len(notes) == 1, result.stdout
    assert "shared.bin" in notes[0] and "2 unfinished multipart uploads" in notes[0]
    assert f"ossdesk uploads --endpoint {sandbox.endpoint} --bucket {sandbox.bucket}" \
        in notes[0]
    # Nothing was aborted: the lost one is still there, and so is the other client's ...
    assert {u.upload_id for u in remote_uploads(sandbox)} == {*lost, theirs}
    # ... which goes on and completes.
    part2 = other.upload_part("shared.bin", theirs, 2, b"b" * 10)
    other.complete_multipart_upload("shared.bin", theirs, [
        oss2.models.PartInfo(1, part1.etag), oss2.models.PartInfo(2, part2.etag)])
    assert other.get_object("shared.bin").read() == b"a" * (100 * KiB) + b"b" * 10
    assert {u.upload_id for u in remote_uploads(sandbox)} == set(lost)
    rows = snapshot_store(config.paths().database).rows
    assert [(r["state"], r["initiating_at"]) for r in rows] == [("done", None)]


def test_a_lost_initiate_with_nothing_on_the_server_says_nothing(sandbox: SandboxInfo,
                                                                 tmp_path: Path) -> None:
    """The Initiate never reached the server (it failed): no upload, no notice."""
    assert sandbox.server is not None
    path = write_random(tmp_path / "quiet.bin", 3 * 100 * KiB + 7)
    env = cli_env(sandbox, OSSDESK_CRASH_AT="initiated")
    ossdesk("upload", str(path), *dest(sandbox), "--part-size", "100KiB", env=env)
    for upload in remote_uploads(sandbox):  # as if the Initiate had never arrived
        sandbox.bucket_client().abort_multipart_upload(upload.key, upload.upload_id)
    del env["OSSDESK_CRASH_AT"]
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not re.search(r"left alone", result.stdout + result.stderr)
    assert remote_uploads(sandbox) == []
