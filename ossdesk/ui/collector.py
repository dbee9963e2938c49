"""The window's garbage collector: what lives long is kept out of its full collections.

CPython's full collection walks every tracked object, and it runs each time the objects
that survived the younger collections grow by a quarter: a 100,000-file drop meant nine of
them, of up to ~200 ms each, on the GUI thread. The rows live as long as they are in the
queue, so once added they are frozen (``gc.freeze``): moved to a generation the collector
never walks. A full collection right before each freeze walks only what is not frozen yet
(what came since the last freeze: ~0.5 ms on average in ``run_window``), so garbage of the
moment is freed, not frozen. Frozen objects are still freed the usual way when nothing
refers to them (a removed row goes at once); only reference cycles among them wait until
the next :func:`thaw`, which runs when the queue is empty again.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Free what is garbage now, then freeze everything left (the window, its rows)."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Let the collector see every object again, collect, and freeze what is left: for
    cycles that became garbage while frozen (call it when little is alive: an empty queue)."""
    gc.unfreeze()
    settle()
