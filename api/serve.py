"""`agentplace serve`: settings, the refusals that protect an exposed service, then uvicorn."""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy.engine import make_url

from api.logs import configure
from api.settings import ENV_TOKEN, Settings, load_settings

log = logging.getLogger("agentplace.api")


class ServeError(Exception):
    """The service must not start as configured."""


def check(settings: Settings) -> None:
    """Anyone who can reach a non-loopback address could place (and bind) pods: refuse without a
    token. The sink is built once here so a bad one fails before listening."""
    if not settings.loopback and not settings.api_token:
        raise ServeError(f"refusing to listen on {settings.host} without an API token: set {ENV_TOKEN} "
                         "or api_token in the config file, or listen on 127.0.0.1")


def run_server(config: str | os.PathLike[str] | None = None, **overrides: Any) -> None:
    import uvicorn

    from api.server import create_app

    settings = load_settings(config, **overrides)
    check(settings)
    configure()
    try:
        app = create_app(settings)
    except ValueError as exc:  # a bad sink spelling
        raise ServeError(str(exc)) from None
    db = make_url(app.state.service.outbox.url).render_as_string(hide_password=True)
    log.info("serve", extra={"fields": {
        "host": settings.host, "port": settings.port, "db": db,
        "sink": settings.sink, "token": bool(settings.api_token), "solve_slots": settings.solve_slots,
        "queue_depth": settings.queue_depth, "max_time_limit": settings.max_time_limit}})
    # log_config=None keeps our JSON handler for uvicorn's records; our middleware logs each request
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                limit_concurrency=settings.max_connections, timeout_graceful_shutdown=5)
