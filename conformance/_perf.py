"""Performance helpers for the hot paths (loading and checking large transcripts)."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many long-lived objects.

    Decoding a transcript allocates millions of dicts that all stay alive; every collection then walks
    them all again, which made loading four times slower. On the way out the survivors are frozen
    (moved out of the collector's sight) so that turning the collector back on does not walk them all
    once more; they are still freed by reference counting. Nothing built here forms reference cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
