"""The job rules and matching weights an app's settings call for."""

from __future__ import annotations

from gpunet.indexer.jobs import JobRules
from gpunet.indexer.settings import IndexerSettings


def job_rules(settings: IndexerSettings) -> JobRules:
    return JobRules(
        fee_bps=settings.fee_bps,
        max_attempts=settings.max_attempts,
        low_funds_grace_s=settings.low_funds_grace_s,
    )
