"""Fixtures of the reliability tests: an in-process engine against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ossdesk.core.upload import RetryPolicy
from tests.support.engine import EngineFactory, Recorder, engine_factory, new_upload
from tests.support.sandbox import SandboxInfo

__all__ = ["FAST_RETRY", "EngineFactory", "Recorder", "new_upload"]

FAST_RETRY = RetryPolicy(tries=10, base=0.02, cap=0.2)


@pytest.fixture
def engine(sandbox: SandboxInfo) -> Iterator[EngineFactory]:
    """``engine(**scheduler_kwargs) -> (scheduler, recorder)`` on a fresh store; closed at the
    end. Credentials are the sandbox's unless ``creds`` is given."""
    yield from engine_factory(sandbox, FAST_RETRY)
