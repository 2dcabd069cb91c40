"""A Ray runtime for one batch of tasks (what-if sweeps, partitioned solves).

"local" (or no address) always starts a fresh local runtime, ignoring RAY_ADDRESS; "auto" or an
address joins an existing cluster. A runtime started here is shut down when the batch ends; one
that was already running is left alone. Ray is an optional extra (`agentplace[ray]`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from optimizer.config import ConfigError


@dataclass
class RayRuntime:
    ray: Any  # the imported module
    cpus: int
    started: bool  # False: joined a runtime this process already had


@contextmanager
def ray_runtime(address: str | None, option: str) -> Iterator[RayRuntime]:
    """`option` names the setting in errors, e.g. "--ray-address " or "partition_pool ray:"."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"{option.rstrip(': ')}: Ray is not installed "
                          "(pip install 'agentplace[ray]')") from None
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"{option}{address or 'local'}: cannot start or join a Ray "
                              f"runtime: {exc}") from None
    try:
        yield RayRuntime(ray, int(ray.cluster_resources().get("CPU", 1)), started)
    finally:
        if started:
            ray.shutdown()
