"""Exact Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource).

Quantities are kept as exact fractions (rounded up to whole nanos at parse time, as kube does)
and converted to integer base units only at the end, rounding up as `Quantity.Value()` /
`MilliValue()` do, so the solver never sees a float.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# ASCII digits only, as kube's scanner: `\d` would also accept '٣' and other Unicode digits
_GRAMMAR = re.compile(
    r"(?P<sign>[+-]?)(?P<num>[0-9]+\.?[0-9]*|\.[0-9]+)"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exp>[+-]?[0-9]+))?"
)
_NANO = 10**9
# kube caps a binary-suffixed quantity at 2^63-1 ("9Ei" parses as 9223372036854775807)
_MAX_BINARY = 2**63 - 1
# resources counted in thousandths: kube reads them with MilliValue()
MILLI_RESOURCES = frozenset({"cpu"})
# ResourceQuota names whose amounts are cpu: counted in millicores like cpu itself
MILLI_QUOTA_RESOURCES = frozenset({"cpu", "requests.cpu", "limits.cpu"})


@dataclass(frozen=True, slots=True)
class Quantity:
    """A parsed quantity; `text` keeps the user's spelling for messages."""

    value: Fraction
    text: str

    def units(self, resource: str) -> int:
        return to_units(resource, self.value)

    def __str__(self) -> str:
        return self.text


def parse_quantity(raw: Any) -> Quantity:
    """Parse `100m`, `1.5Gi`, `2e3`, `4`, ... exactly; raise ValueError naming the input."""
    if isinstance(raw, Quantity):
        return raw
    if type(raw) is str:  # a fleet repeats a few spellings: parse each once (Quantity is frozen)
        return _parse_text(raw)
    return _parse(raw)


@functools.lru_cache(maxsize=4096)
def _parse_text(raw: str) -> Quantity:
    return _parse(raw)


def _parse(raw: Any) -> Quantity:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(
            f"{raw!r} is not a quantity: expected a string such as \"500m\" or \"4Gi\""
        )
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError(f"{raw!r} is not a quantity")
        text = repr(raw)
    else:
        text = str(raw)
    m = _GRAMMAR.fullmatch(text.strip()) if isinstance(raw, str) else _GRAMMAR.fullmatch(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not a quantity: quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    value = Fraction(m["num"])
    if m["exp"] is not None:
        exp = int(m["exp"])
        if abs(exp) > 100:
            raise ValueError(f"{text!r} is not a quantity: exponent out of range")
        value *= Fraction(10) ** exp
    else:
        suffix = m["suffix"] or ""
        value *= _BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix]
    # ParseQuantity rounds every value away from zero to a whole nano ("0.1n" -> 1n), so sums
    # of several quantities match kube's, not just each one alone
    value = Fraction(math.ceil(value * _NANO), _NANO)
    if m["suffix"] in _BINARY and value > _MAX_BINARY:
        value = Fraction(_MAX_BINARY)
    if m["sign"] == "-":
        value = -value
    return Quantity(value, text.strip())


def to_units(resource: str, value: Fraction) -> int:
    """Integer base units, rounded up: millicores for cpu, the plain value for the rest."""
    scaled = value * 1000 if resource in MILLI_RESOURCES else value
    return math.ceil(scaled)


def format_units(resource: str, units: int) -> str:
    """Inverse of to_units for messages: 1500 cpu units -> '1500m', bytes -> '2Gi' when exact."""
    if resource in MILLI_RESOURCES:
        return f"{units // 1000}" if units % 1000 == 0 else f"{units}m"
    if (units and resource in ("memory", "ephemeral-storage")) or resource.startswith("hugepages-"):
        for suffix, factor in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            if units % factor == 0 and units >= factor:
                return f"{units // factor}{suffix}"
    return str(units)


def quota_units(resource: str, value: Fraction, *, round_down: bool = False) -> int:
    """Integer units of a ResourceQuota amount: millicores for cpu, requests.cpu and limits.cpu,
    the plain value for the rest. Rounded up by default (a charge); `round_down` for a cap, so
    integer sums compared with a rounded-down cap never accept what exact sums would not."""
    scaled = value * 1000 if resource in MILLI_QUOTA_RESOURCES else value
    return math.floor(scaled) if round_down else math.ceil(scaled)


def quantity_format(text: str) -> str:
    """kube's Quantity.Format of a spelling: BinarySI (Ki..Ei), DecimalExponent (1e3) or
    DecimalSI (everything else, a bare number included)."""
    m = _GRAMMAR.fullmatch(text.strip())
    if m is not None and m["suffix"] in _BINARY:
        return "BinarySI"
    if m is not None and m["exp"] is not None:
        return "DecimalExponent"
    return "DecimalSI"


_DECIMAL_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P",
                   18: "E"}
_BINARY_SUFFIX = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def canonical(value: Fraction, fmt: str = "DecimalSI") -> str:
    """Quantity.String() of an exact value: what kube prints in messages (CanonicalizeBytes).

    BinarySI stays binary only for whole values outside (-1024, 1024): 1536Mi, 3Ki, but 1000.
    Decimal forms use the largest exponent that is a multiple of 3 and keeps the mantissa whole:
    1.5 -> 1500m, 2000 -> 2k, 10 -> 10. DecimalExponent prints 2e3 where DecimalSI prints 2k.
    """
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if fmt == "BinarySI" and value >= 1024 and value.denominator == 1:
        n, exp = int(value), 0
        while n % 1024 == 0 and exp < len(_BINARY_SUFFIX) - 1:
            n, exp = n // 1024, exp + 1
        return f"{sign}{n}{_BINARY_SUFFIX[exp]}"
    # a parsed (or summed) value is a whole number of nanos
    mantissa, exp = math.ceil(value * _NANO), -9
    while mantissa % 10 == 0:
        mantissa, exp = mantissa // 10, exp + 1
    shift = exp % 3
    mantissa, exp = mantissa * 10**shift, exp - shift
    if fmt == "DecimalExponent" or exp not in _DECIMAL_SUFFIX:
        return f"{sign}{mantissa}" + (f"e{exp}" if exp else "")
    return f"{sign}{mantissa}{_DECIMAL_SUFFIX[exp]}"


def _serialize(q: Quantity) -> str:
    return q.text


QuantityField = Annotated[Quantity, BeforeValidator(parse_quantity), PlainSerializer(_serialize)]
"""A pydantic field type for a Kubernetes quantity."""
