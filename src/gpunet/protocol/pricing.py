"""Quotes: what a job will cost at most, and what the same GPU-hours cost in a cloud.

The estimate is the amount held at match (``ledger.hold_amount``): the charge for the
job's whole allowed duration, so the buyer never pays more than quoted and usually less.
The reference is the catalogue's on-demand cloud price for the same model, GPU count
and duration, rounded the same way, so equal prices give exactly 0% savings. Models
without a public single-GPU price, and CPU work, have no reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpunet.errors import ValidationError
from gpunet.protocol import catalogue
from gpunet.protocol.ledger import hold_amount


@dataclass(frozen=True)
class Quote:
    """The most a job can cost on the best offer, next to the reference cloud price."""

    price_micros: int
    units: int
    duration_s: int
    estimated_micros: int
    reference_micros: int | None
    reference_source: str | None
    savings_pct: float | None


def quote(price_micros: int, gpu_model: str, units: int, duration_s: int) -> Quote:
    """Quote ``units`` GPUs of ``gpu_model`` (1 unit for CPU work) for ``duration_s``.

    ``price_micros`` is the best qualifying offer's price per GPU-hour (node-hour for
    CPU). Raises UnknownGpuModel for a model not in the catalogue.
    """
    # The parameter keeps the wire name, so the lookup goes through the module.
    model = catalogue.gpu_model(gpu_model)
    if model.name == catalogue.CPU_MODEL and units != 1:
        raise ValidationError("units", units, "CPU work is billed per node: use 1 unit")
    estimated = hold_amount(price_micros, units, duration_s)
    reference = model.reference_price_micros
    if reference is None:
        return Quote(price_micros, units, duration_s, estimated, None, None, None)
    reference_micros = hold_amount(reference, units, duration_s)
    savings = (reference_micros - estimated) / reference_micros * 100
    return Quote(
        price_micros,
        units,
        duration_s,
        estimated,
        reference_micros,
        model.reference_source,
        savings,
    )
