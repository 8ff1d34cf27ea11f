"""Job runtimes: run one job's command in an isolation boundary, with limits.

``BwrapRuntime`` (a bubblewrap sandbox, the embedded default) and ``DockerRuntime``
(an image on a Docker engine) share one contract, ``Runtime``: a ``RunRequest`` in,
output lines streamed as they come, one classified ``RunResult`` out.
"""

from __future__ import annotations

import logging

from gpunet.node.runtime.base import (
    Limits,
    Outcome,
    OutputCallback,
    RunRequest,
    RunResult,
    Runtime,
)
from gpunet.node.runtime.bwrap import BwrapRuntime
from gpunet.node.runtime.docker import DockerRuntime

log = logging.getLogger("gpunet.node")


def detect_runtimes() -> dict[str, Runtime]:
    """The runtimes that work on this host, by name, for the node's offer.

    Each one that does not work is logged with the reason and what to do.
    """
    usable: dict[str, Runtime] = {}
    for runtime in (BwrapRuntime(), DockerRuntime()):
        reason = runtime.available()
        if reason is None:
            usable[runtime.name] = runtime
        else:
            log.info("runtime %s is not available: %s", runtime.name, reason)
    return usable


__all__ = [
    "BwrapRuntime",
    "DockerRuntime",
    "Limits",
    "Outcome",
    "OutputCallback",
    "RunRequest",
    "RunResult",
    "Runtime",
    "detect_runtimes",
]
