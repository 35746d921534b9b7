"""The one entry point: `app` for gunicorn and `flask --app wsgi`, `huey` for the consumer of
background tasks (`huey_consumer wsgi.huey`)."""

from fair import create_app
from fair.tasks import huey

app = create_app()

__all__ = ["app", "huey"]
