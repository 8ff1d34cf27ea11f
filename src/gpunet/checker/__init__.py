"""The checker: a daemon that checks nodes for the indexer and signs what it finds.

``CheckerAgent`` (``agent.py``) registers, long-polls for tasks and reports signed
results; ``CheckRunner`` (``runner.py``) runs one task with the runner of its kind:
``liveness.py``, ``capacity.py`` or ``delivery.py``.
"""

from __future__ import annotations
