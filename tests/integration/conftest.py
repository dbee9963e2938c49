"""Fixtures shared by the engine tests of this folder."""

from __future__ import annotations

from tests.integration.test_engine_upload import make_engine  # noqa: F401 - a fixture
