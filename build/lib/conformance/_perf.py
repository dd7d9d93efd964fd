"""Performance helpers for the hot paths (loading and checking large transcripts)."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


BATCH = 1000
"""Below this many messages the pause is not worth it, and a long-running server must not freeze objects."""


@contextmanager
def paused_gc(count: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while building many long-lived objects.

    Decoding a transcript allocates millions of dicts that all stay alive; every collection then walks
    them all again, which made loading four times slower. On the way out the survivors are frozen
    (moved out of the collector's sight) so that turning the collector back on does not walk them all
    once more; they are still freed by reference counting. Nothing built here forms reference cycles.
    Only batches of `BATCH` items or more get this: a server checking one message at a time must keep
    its collector as it is.
    """
    if count < BATCH:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
