"""``ossdesk selftest``: what the release builds run against every frozen app.

Here it runs from the source tree: once in-process (readable failures) and once as a child
process (the smoke test's rule: exit 0 and nothing at all on stderr).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import oss2
import pytest

from ossdesk import selftest
from ossdesk.cli import main
from ossdesk.credentials import Profile, ProfileStore, keyring_available
from tests.support.sandbox import SandboxInfo, SandboxProcess, read_access_log

CHECK_NAMES = [name for name, _ in selftest.CHECKS]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder where the self-test makes its temporary folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.slow
def test_every_check_passes_and_nothing_is_left_behind(
    capsys: pytest.CaptureFixture[str], private_tmp: Path, ossdesk_home: Path
) -> None:
    before = dict(os.environ)

    code = main(["selftest"])

    out, err = capsys.readouterr()
    assert code == 0, out
    assert err == ""
    lines = _lines(out)
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", name] for name in CHECK_NAMES]
    assert lines[-1].startswith(f"selftest passed: {len(CHECK_NAMES)} checks")
    upload_line = next(line for line in lines if line.split()[1] == "upload")
    assert "3 parts" in upload_line
    assert "verified" in upload_line
    # Its temporary folder is gone, the user's ossdesk folder was never created, and the
    # environment (OSSDESK_HOME, proxies, credentials) is as it was.
    assert list(private_tmp.iterdir()) == []
    assert not ossdesk_home.exists()
    assert dict(os.environ) == before


@pytest.mark.slow
def test_as_a_command_it_exits_0_with_nothing_on_stderr(tmp_path: Path) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path), TEMP=str(tmp_path), TMP=str(tmp_path))
    env.pop("QT_QPA_PLATFORM", None)  # the self-test must not need it
    proc = subprocess.run(
        [sys.executable, "-m", "ossdesk", "selftest"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert _lines(proc.stdout)[-1].startswith("selftest passed")
    assert list(tmp_path.iterdir()) == []


def test_a_single_put_when_one_part_is_asked(
    capsys: pytest.CaptureFixture[str], private_tmp: Path
) -> None:
    code = main(["selftest", "--only", "upload", "--parts", "1"])

    out, _ = capsys.readouterr()
    assert code == 0, out
    assert "1 PUT" in out


def test_more_smaller_parts(capsys: pytest.CaptureFixture[str], private_tmp: Path) -> None:
    code = main(["selftest", "--only", "upload", "--parts", "5", "--part-size", "100KiB"])

    out, _ = capsys.readouterr()
    assert code == 0, out
    assert "5 parts" in out


def test_a_failing_check_fails_the_command_and_the_others_still_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    def broken(context: selftest.Context) -> str:
        raise RuntimeError("the bundle lost a module")

    checks = [(name, broken if name == "crc64" else fn) for name, fn in selftest.CHECKS]
    monkeypatch.setattr(selftest, "CHECKS", checks)

    code = main(["selftest", "--only", "version", "--only", "crc64", "--only", "modules"])

    out, err = capsys.readouterr()
    assert code == 1
    assert err == ""
    lines = _lines(out)
    assert lines[0].split()[:2] == ["ok", "version"]
    assert lines[1].split()[:2] == ["FAIL", "crc64"]
    assert "RuntimeError: the bundle lost a module" in lines[1]
    assert lines[2].split()[:2] == ["ok", "modules"]
    assert lines[3].startswith("selftest FAILED: crc64")


def test_keep_leaves_the_folder_and_says_where(
    capsys: pytest.CaptureFixture[str], private_tmp: Path
) -> None:
    code = main(["selftest", "--only", "upload", "--keep"])

    out, _ = capsys.readouterr()
    assert code == 0, out
    kept = Path(_lines(out)[0].removeprefix("temporary folder: "))
    assert kept.parent == private_tmp
    assert (kept / "selftest.bin").is_file()


def test_run_checks_reports_each_result_as_it_comes() -> None:
    seen: list[str] = []
    context = selftest.Context(workdir=Path(), parts=3, part_size=256 * 1024)

    results = selftest.run_checks(
        context, ["version", "crc64"], report=lambda result: seen.append(result.name)
    )

    assert seen == ["version", "crc64"]
    assert all(result.ok for result in results)


@pytest.mark.parametrize("value", ["99KiB", "0", "lots"])
def test_part_size_below_the_oss_minimum_is_refused(value: str) -> None:
    parser = argparse.ArgumentParser()
    selftest.configure(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--part-size", value])


def test_the_qt_probe_is_not_a_visible_option() -> None:
    parser = argparse.ArgumentParser()
    selftest.configure(parser)
    assert "--probe" not in parser.format_help()


# --- against a real endpoint (here: ``ossdesk sandbox`` in its own process) ------------------


def _bucket_is_empty(info: SandboxInfo) -> tuple[list[str], list[str]]:
    bucket = info.bucket_client()
    objects = [o.key for o in oss2.ObjectIterator(bucket)]
    uploads = [u.key for u in oss2.MultipartUploadIterator(bucket)]
    return objects, uploads


def test_endpoint_check_passes_against_a_sandbox_process_and_leaves_nothing(
    sandbox_process: Callable[..., SandboxProcess], tmp_path: Path, ossdesk_home: Path
) -> None:
    server = sandbox_process()
    info = server.info
    env = dict(os.environ, TMPDIR=str(tmp_path), TEMP=str(tmp_path), TMP=str(tmp_path),
               OSS_ACCESS_KEY_ID=info.access_key_id,
               OSS_ACCESS_KEY_SECRET=info.access_key_secret)

    proc = subprocess.run(
        [sys.executable, "-m", "ossdesk", "selftest", "--only", "endpoint",
         "--endpoint", info.endpoint, "--bucket", info.bucket],
        capture_output=True, text=True, timeout=240, env=env, check=False,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    lines = _lines(proc.stdout)
    assert lines[0].split()[:2] == ["ok", "endpoint"]
    assert "stopped after" in lines[0] and "continued by a new engine" in lines[0]
    assert "verified" in lines[0] and "nothing left under ossdesk-selftest/" in lines[0]
    assert lines[-1].startswith("selftest passed: 1 checks")
    assert info.access_key_secret not in proc.stdout
    # The upload went through the server: stopped, continued without sending a confirmed
    # part again, completed, then deleted.
    log = read_access_log(server.log_path)
    parts = [r["query"].rsplit("partNumber=", 1)[1] for r in log
             if r["method"] == "PUT" and "partNumber=" in r["query"] and r["status"] == 200]
    assert sorted(parts) == ["1", "2", "3"]
    assert any(r["method"] == "POST" and "uploadId=" in r["query"] and r["status"] == 200
               for r in log)
    deleted = [unquote(r["path"]) for r in log if r["method"] == "DELETE"]
    assert len(deleted) == 1 and deleted[0].startswith(f"/{info.bucket}/ossdesk-selftest/")
    assert _bucket_is_empty(info) == ([], [])
    # A temporary checkpoint file, never the user's: OSSDESK_HOME was not even created.
    assert not ossdesk_home.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("ossdesk-selftest-")] == []


def test_endpoint_check_removes_what_it_wrote_when_it_fails(
    sandbox: SandboxInfo, capsys: pytest.CaptureFixture[str], private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", sandbox.access_key_id)
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", sandbox.access_key_secret)
    assert sandbox.server is not None
    # Every CompleteMultipartUpload is refused: the parts are on the server, the object never.
    sandbox.server.faults.fail(403, method="POST", pattern=r"uploadId=", code="AccessDenied",
                               count=None)

    code = main(["selftest", "--only", "endpoint", "--endpoint", sandbox.endpoint,
                 "--bucket", sandbox.bucket])

    out, err = capsys.readouterr()
    assert code == 1, out
    assert err == ""
    first = _lines(out)[0]
    assert first.split()[:2] == ["FAIL", "endpoint"]
    assert "AccessDenied" in first
    assert "still under" not in first and "remove what is left" not in first
    assert _bucket_is_empty(sandbox) == ([], [])
    assert list(private_tmp.iterdir()) == []


def test_endpoint_check_with_a_wrong_secret_says_so_and_writes_nothing(
    sandbox: SandboxInfo, capsys: pytest.CaptureFixture[str], private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", sandbox.access_key_id)
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "not-the-secret")

    code = main(["selftest", "--only", "endpoint", "--endpoint", sandbox.endpoint,
                 "--bucket", sandbox.bucket])

    out, _ = capsys.readouterr()
    assert code == 1
    assert "does not match" in out and "(nothing was written)" in out
    assert "not-the-secret" not in out
    assert _bucket_is_empty(sandbox) == ([], [])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--endpoint", "http://127.0.0.1:9", "--bucket", "b"], "no credentials"),
        (["--only", "endpoint"], "needs --endpoint"),
        (["--profile", "nobody"], "no saved profile named 'nobody'"),
    ],
)
def test_endpoint_check_without_what_it_needs_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["selftest", *argv])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert message in err


@pytest.mark.keyring
def test_endpoint_check_with_a_saved_profile_takes_everything_from_it(
    sandbox: SandboxInfo, capsys: pytest.CaptureFixture[str], private_tmp: Path,
    ossdesk_home: Path,
) -> None:
    """Endpoint, bucket, region from the profile, the secret from the keyring; and the
    profile's OSSDESK_HOME is only read: no upload list or database is made there."""
    if not keyring_available():
        if os.environ.get("OSSDESK_REQUIRE_KEYRING") == "1":
            pytest.fail("no usable keyring backend, and OSSDESK_REQUIRE_KEYRING=1")
        pytest.skip("no usable keyring backend (run inside scripts/with-keyring)")
    profiles = ProfileStore()
    profiles.save(Profile(name="selftest-profile", endpoint=sandbox.endpoint,
                          bucket=sandbox.bucket, region=sandbox.region,
                          access_key_id=sandbox.access_key_id),
                  secret=sandbox.access_key_secret)
    before = sorted(p.relative_to(ossdesk_home) for p in ossdesk_home.rglob("*"))
    try:
        code = main(["selftest", "--only", "endpoint", "--profile", "selftest-profile"])
    finally:
        profiles.delete("selftest-profile")

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "credentials from profile selftest-profile" in out
    assert sandbox.access_key_secret not in out
    assert _bucket_is_empty(sandbox) == ([], [])
    after = sorted(p.relative_to(ossdesk_home) for p in ossdesk_home.rglob("*"))
    assert after == before
    assert not [p for p in ossdesk_home.rglob("*") if p.suffix.startswith(".sqlite")]
