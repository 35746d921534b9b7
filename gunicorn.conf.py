"""gunicorn settings: one gevent worker per process (Socket.IO needs sticky clients)."""

import os

bind = os.environ.get("FAIR_BIND", "127.0.0.1:5000")
worker_class = "gevent"
workers = 1
# Every Socket.IO viewer holds a connection; the default of 1,000 is far too few.
worker_connections = int(os.environ.get("FAIR_WORKER_CONNECTIONS", "20000"))
timeout = 60
graceful_timeout = 20
accesslog = os.environ.get("FAIR_ACCESS_LOG") or None
errorlog = "-"
# gunicorn 27's control socket has one fixed path per host; several processes behind nginx would
# fight over it, and nothing here uses it.
control_socket_disable = True


def post_worker_init(worker: object) -> None:
    """Move the loaded application out of the garbage collector's sight, and collect less often.

    The app, its models and compiled statements live as long as the worker; scanning them in
    every full collection stalled requests (the intents' p99).
    """
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
