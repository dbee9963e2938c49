"""The local OSS-compatible sandbox server (``ossdesk sandbox``)."""

from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    DEFAULT_PORT,
    DEFAULT_REGION,
    TEST_HOOKS_ENV,
    SandboxServer,
)

__all__ = [
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCESS_KEY_SECRET",
    "DEFAULT_BUCKET",
    "DEFAULT_PORT",
    "DEFAULT_REGION",
    "TEST_HOOKS_ENV",
    "SandboxServer",
]
