"""An in-process engine against the sandbox, shared by the engine and reliability tests."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ossdesk.core.events import Event
from ossdesk.core.oss import Credentials
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import NewUpload, Store
from ossdesk.core.upload import RetryPolicy
from tests.support.sandbox import SandboxInfo


def new_upload(sb: SandboxInfo, path: Path, key: str | None = None, **kw: Any) -> NewUpload:
    st = path.stat()
    return NewUpload(source=path, size=st.st_size, mtime_ns=st.st_mtime_ns,
                     key=key or path.name, endpoint=sb.endpoint, bucket=sb.bucket,
                     region=sb.region, **kw)


class Recorder:
    """Collects events (thread-safe) and lets a test wait for one without sleeping."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._q: queue.Queue[Event] = queue.Queue()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
        self._q.put(event)

    def wait_for(self, match: Callable[[Event], bool], timeout: float = 30) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"event not seen in {timeout}s; saw "
                                     f"{[e.kind for e in self.events][-20:]}")
            try:
                event = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if match(event):
                return event

    def of(self, kind: type[Any]) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]


EngineFactory = Callable[..., tuple[Scheduler, Recorder]]


def engine_factory(sandbox: SandboxInfo, retry: RetryPolicy) -> Iterator[EngineFactory]:
    """Body of an engine fixture: yields ``make(secret=None, creds=None, store=None,
    **scheduler_kwargs) -> (scheduler, recorder)`` on a fresh store (the sandbox's
    credentials unless ``creds`` or ``secret`` say otherwise); closes all at the end."""
    made: list[tuple[Scheduler, Store]] = []

    def make(secret: str | None = None, creds: Credentials | None = None,
             store: Store | None = None, **kw: Any) -> tuple[Scheduler, Recorder]:
        store = store or Store.open()
        given = creds or Credentials(sandbox.access_key_id,
                                     secret or sandbox.access_key_secret,
                                     sandbox.security_token)
        kw.setdefault("retry", retry)
        scheduler = Scheduler(store, credentials=lambda _source: given, **kw)
        recorder = Recorder()
        scheduler.add_listener(recorder)
        made.append((scheduler, store))
        return scheduler, recorder

    yield make
    for scheduler, store in made:
        scheduler.close(timeout=10)
        store.close()
