"""A credentials problem is named where it can be fixed: the environment variable when the
credentials came from the environment, the profile when from a profile, and the STS token
(not the AccessKey ID) when the token is what OSS refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError
from tests.reliability.helpers import KiB, cli_env, dest, ossdesk, write_random
from tests.support.sandbox import SandboxInfo


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_cli_a_wrong_or_missing_sts_token_names_the_environment_variable(
        sandbox: SandboxInfo, tmp_path: Path, token: str) -> None:
    assert sandbox.server is not None
    sandbox.server.set_security_token("the-right-token")
    path = write_random(tmp_path / "a.bin", 4 * KiB)
    env = cli_env(sandbox, OSSDESK_HOME=str(tmp_path / "home"))
    env.pop("OSS_SESSION_TOKEN", None)
    if token:
        env["OSS_SESSION_TOKEN"] = token
    result = ossdesk("upload", str(path), *dest(sandbox), env=env)
    assert result.returncode == 2
    assert "OSS rejected the security token (STS)" in result.stderr
    assert "Check OSS_SESSION_TOKEN in the environment" in result.stderr
    assert "AccessKey ID" not in result.stderr and "profile" not in result.stderr


def test_cli_a_wrong_key_id_from_the_environment_names_the_variable(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "a.bin", 4 * KiB)
    env = cli_env(sandbox, OSSDESK_HOME=str(tmp_path / "home"),
                  OSS_ACCESS_KEY_ID="LTAIsomethingelse")
    result = ossdesk("upload", str(path), *dest(sandbox), env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ossdesk: OSS does not know this AccessKey ID (or the key is disabled). Check "
        "OSS_ACCESS_KEY_ID in the environment.")


def test_a_profile_s_credentials_name_the_profile(sandbox: SandboxInfo) -> None:
    assert sandbox.server is not None
    where = Endpoint(sandbox.endpoint, sandbox.bucket, sandbox.region)
    wrong_id = OssClient(where, Credentials("LTAIother", sandbox.access_key_secret),
                         source="work")
    with pytest.raises(OssError) as caught:
        wrong_id.check_connection()
    assert caught.value.message.endswith("Check the AccessKey ID in the profile 'work'.")
    sandbox.server.set_security_token("the-right-token")
    wrong_token = OssClient(where, Credentials(sandbox.access_key_id,
                                               sandbox.access_key_secret, "stale"),
                            source="work")
    with pytest.raises(OssError) as caught:
        wrong_token.check_connection()
    assert "security token (STS)" in caught.value.message
    assert "the STS token of the profile 'work'" in caught.value.message
    assert "AccessKey ID in" not in caught.value.message
