"""The service's settings: one validated object, read once at start-up.

Precedence, highest first: `agentplace serve` flags, environment variables (`AGENTPLACE_API_TOKEN`,
`AGENTPLACE_DB`, `AGENTPLACE_SINK`), the YAML config file (`--config PATH` or
`$AGENTPLACE_CONFIG`, keys as the fields below), the defaults. The token is never a flag: a
command line is visible to every user of the machine (`ps`), an environment variable or a file
with tight permissions is not.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.errors import InputError, InputErrors, from_validation_error

ENV_TOKEN = "AGENTPLACE_API_TOKEN"
ENV_CONFIG = "AGENTPLACE_CONFIG"
ENV_DB = "AGENTPLACE_DB"
ENV_SINK = "AGENTPLACE_SINK"


class Settings(BaseModel):
    """Limits are deliberately small by default: 2 cores solve 2 windows at a time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    db: str | None = None  # binder outbox and stored plans; None: $AGENTPLACE_DB or ./agentplace.db
    sink: str = "dry-run"  # where ?bind=true sends bindings: dry-run, jsonl:PATH, kubernetes
    api_token: str | None = Field(None, repr=False)
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_time_limit: float = Field(30.0, gt=0)  # per-request solve time cap, seconds
    max_workers: int = Field(2, ge=1)  # CP-SAT search workers one request may use
    solve_slots: int = Field(2, ge=1)  # solves running at once (the worker pool's size)
    queue_depth: int = Field(2, ge=0)  # requests waiting for a slot; beyond that 429
    retry_after: int = Field(1, ge=1)  # seconds, the Retry-After of a 429
    max_connections: int = Field(100, ge=1)  # open connections + tasks; uvicorn answers 503 beyond

    @property
    def loopback(self) -> bool:
        """True when `host` only listens on this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def load_settings(config: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Settings from the config file, the environment and `overrides` (None values ignored).
    Raises InputErrors naming the file and field of a bad value, like input errors."""
    values: dict[str, Any] = {}
    path = config if config is not None else os.environ.get(ENV_CONFIG)
    where = "config"
    if path:
        where = f"config file {path}"
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputErrors([InputError(where, "", " ".join(str(exc).split()))]) from None
        if not isinstance(data, dict):
            raise InputErrors([InputError(where, "", "expected a mapping of setting -> value")])
        values.update(data)
    for env, key in ((ENV_TOKEN, "api_token"), (ENV_DB, "db"), (ENV_SINK, "sink")):
        if os.environ.get(env):
            values[key] = os.environ[env]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise InputErrors(from_validation_error(where, exc)) from None
