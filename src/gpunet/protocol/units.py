"""Token amounts and USD prices as integers.

The ledger never holds floats. Token amounts are base units (18 decimals, like ETH's
wei); USD prices are micro-dollars (1 USD = 1,000,000). Conversions from text go
through ``Decimal`` and refuse anything that would need rounding.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

from gpunet.errors import ValidationError

TOKEN_DECIMALS = 18
ONE_TOKEN = 10**TOKEN_DECIMALS
MICROS_PER_USD = 1_000_000
# Far above any real amount (the whole supply is 4.2e28 base units), low enough that a
# hostile "1e999999" cannot make us build a million-digit integer.
MAX_WHOLE_UNITS = Decimal(10) ** 30


def _exact_units(field: str, text: str | int | Decimal, scale: int) -> int:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValidationError(field, text, "not a number; write it like 2.50") from None
    if not value.is_finite():
        raise ValidationError(field, text, "must be a finite number")
    if abs(value) >= MAX_WHOLE_UNITS:
        raise ValidationError(field, text, "is too large")
    with localcontext(prec=80):
        scaled = value * scale
        if scaled != scaled.to_integral_value():
            digits = len(str(scale)) - 1
            raise ValidationError(field, text, f"has more than {digits} decimal places")
    return int(scaled)


def parse_usd(text: str | int | Decimal, field: str = "price") -> int:
    """Parse a USD amount such as ``"2.5"`` into micro-dollars (``2500000``)."""
    return _exact_units(field, text, MICROS_PER_USD)


def format_usd(micros: int) -> str:
    """Render micro-dollars as USD with at least two decimals (``2500000`` -> ``2.50``)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    frac_text = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{frac_text}"


def parse_tokens(text: str | int | Decimal, field: str = "amount") -> int:
    """Parse a token amount such as ``"1.5"`` into base units."""
    return _exact_units(field, text, ONE_TOKEN)


def format_tokens(base_units: int) -> str:
    """Render base units as tokens, without trailing zeros (``1500000000000000000`` -> ``1.5``)."""
    sign = "-" if base_units < 0 else ""
    whole, frac = divmod(abs(base_units), ONE_TOKEN)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{f'{frac:018d}'.rstrip('0')}"


def usd_cost_micros(price_per_gpu_hour_micros: int, gpu_count: int, seconds: int) -> int:
    """Cost of ``gpu_count`` GPUs for ``seconds`` at an hourly price, rounded down."""
    return price_per_gpu_hour_micros * gpu_count * seconds // 3600
