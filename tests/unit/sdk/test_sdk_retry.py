"""The retry rules agents share: what each failure calls for, and the link's record."""

from __future__ import annotations

import random

import pytest

from gpunet.errors import ApiError
from gpunet.sdk.errors import IndexerUnreachable
from gpunet.sdk.retry import Backoff, IndexerLink, Next, retryable


def api_error(status: int) -> ApiError:
    return ApiError(status, "error", "refused")


def link(now: list[float]) -> IndexerLink:
    return IndexerLink(Backoff(jitter=0.0), random.Random(1), lambda: now[0])


@pytest.mark.parametrize(("status", "worth"), [(500, True), (503, True), (429, True),
                                               (408, True), (400, False), (403, False),
                                               (404, False), (409, False)])  # fmt: skip
def test_only_outages_and_not_now_answers_are_retryable(status: int, worth: bool) -> None:
    assert retryable(api_error(status)) is worth


def test_outages_back_off_exponentially_and_a_success_resets_the_count() -> None:
    now = [100.0]
    record = link(now)
    delays = [record.failed(IndexerUnreachable("u", "down"), registered=True) for _ in range(3)]
    assert delays == [(Next.RETRY, 1.0), (Next.RETRY, 2.0), (Next.RETRY, 4.0)]
    assert record.failures == 3
    assert record.last_error is not None and "down" in record.last_error

    now[0] = 130.0
    record.succeeded()
    now[0] = 135.0
    assert (record.failures, record.last_error, record.seconds_since_ok()) == (0, None, 5.0)


def test_a_404_once_registered_means_register_again_and_other_refusals_stop() -> None:
    record = link([0.0])
    assert record.failed(api_error(404), registered=True) == (Next.REGISTER_AGAIN, 0.0)
    assert record.failed(api_error(404), registered=False) == (Next.REFUSED, 0.0)
    assert record.failed(api_error(403), registered=True) == (Next.REFUSED, 0.0)
    assert record.failures == 0
