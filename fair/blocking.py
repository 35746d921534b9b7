"""CPU-heavy calls (Argon2, decoding an image) off the event loop: under gevent one such call
would stop every other request and socket of the worker until it returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def run_blocking(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call `fn` in a thread of gevent's pool when gevent runs this process, else directly.

    Argon2 (through cffi) and Pillow's codecs release the GIL, so the worker's greenlets go on
    being served while the thread works. The pool's size (gevent's default, 10) bounds how many
    such calls run at once.
    """
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        return fn(*args, **kwargs)
    import gevent

    result: R = gevent.get_hub().threadpool.apply(fn, args, kwargs)
    return result
