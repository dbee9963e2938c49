"""Fixtures of the reliability tests: an in-process engine against the sandbox."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ossdesk.core.events import Event
from ossdesk.core.oss import Credentials
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import NewUpload, Store
from ossdesk.core.upload import RetryPolicy
from tests.support.sandbox import SandboxInfo

FAST_RETRY = RetryPolicy(tries=10, base=0.02, cap=0.2)


class Recorder:
    """Every event the engine emitted, thread-safe."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def kinds(self) -> list[str]:
        with self._lock:
            return [e.kind for e in self.events]


def new_upload(sb: SandboxInfo, path: Path, key: str | None = None, **kw: Any) -> NewUpload:
    st = path.stat()
    return NewUpload(source=path, size=st.st_size, mtime_ns=st.st_mtime_ns,
                     key=key or path.name, endpoint=sb.endpoint, bucket=sb.bucket,
                     region=sb.region, **kw)


EngineFactory = Callable[..., tuple[Scheduler, Recorder]]


@pytest.fixture
def engine(sandbox: SandboxInfo) -> Iterator[EngineFactory]:
    """``engine(**scheduler_kwargs) -> (scheduler, recorder)`` on a fresh store; closed at the
    end. Credentials are the sandbox's unless ``creds`` is given."""
    made: list[tuple[Scheduler, Store]] = []

    def make(creds: Credentials | None = None, store: Store | None = None,
             **kw: Any) -> tuple[Scheduler, Recorder]:
        store = store or Store.open()
        given = creds or Credentials(sandbox.access_key_id, sandbox.access_key_secret,
                                     sandbox.security_token)
        kw.setdefault("retry", FAST_RETRY)
        scheduler = Scheduler(store, credentials=lambda _source: given, **kw)
        recorder = Recorder()
        scheduler.add_listener(recorder)
        made.append((scheduler, store))
        return scheduler, recorder

    yield make
    for scheduler, store in made:
        scheduler.close(timeout=10)
        store.close()
