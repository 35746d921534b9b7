"""CPU-heavy calls (Argon2, decoding an image) off the event loop: under gevent one such call
would stop every other request and socket of the worker until it returns."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: How many such calls run at once in a process; the others wait their turn as greenlets. One
#: core is left to everything else, so that six loops of wrong passwords cannot take them all.
THREADS = max(1, (os.cpu_count() or 2) - 1)
_pool: Any = None


def run_blocking(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call `fn` in a thread of the process's small pool when gevent runs this process, else
    directly.

    Argon2 (through cffi) and Pillow's codecs release the GIL, so the worker's greenlets go on
    being served while the thread works.
    """
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        return fn(*args, **kwargs)
    global _pool
    if _pool is None:
        from gevent.threadpool import ThreadPool

        _pool = ThreadPool(THREADS)
    result: R = _pool.apply(fn, args, kwargs)
    return result
