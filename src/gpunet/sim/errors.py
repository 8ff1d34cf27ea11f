"""Errors of the economy lab.

::

    GpunetError
    └── SimError               a scenario, parameter grid or price file the lab cannot use
"""

from __future__ import annotations

from gpunet.errors import GpunetError


class SimError(GpunetError):
    """A scenario, sweep grid, price file or option the economy lab cannot use."""
