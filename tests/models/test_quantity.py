"""Kubernetes quantity semantics, checked against k8s.io/apimachinery's resource.ParseQuantity.

Expected values follow kube's own quantity_test.go tables where they overlap: every parsed value
is rounded away from zero to a whole nano, binary-suffixed values are capped at 2^63-1, and
cpu is read in millicores with MilliValue() (ceil), everything else with Value() (ceil).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.pod import ResourceRequirements
from models.quantity import Quantity, format_units, parse_quantity, to_units

KI, MI, GI, TI, PI, EI = (2**10, 2**20, 2**30, 2**40, 2**50, 2**60)
INT64_MAX = 2**63 - 1
NANO = Fraction(1, 10**9)


@pytest.mark.parametrize(
    ("raw", "resource", "units"),
    [
        pytest.param("100m", "cpu", 100, id="100m of cpu is 100 millicores"),
        pytest.param("1", "cpu", 1000, id="a bare 1 of cpu is one core, 1000 millicores"),
        pytest.param("1.5", "cpu", 1500, id="a decimal 1.5 of cpu is 1500 millicores"),
        pytest.param("1.5Gi", "memory", 1536 * MI, id="1.5Gi of memory is 1536Mi in bytes"),
        pytest.param("2e3", "memory", 2000, id="2e3 is a decimal exponent, 2000"),
        pytest.param("2e3", "cpu", 2_000_000, id="2e3 of cpu is 2000 cores in millicores"),
        pytest.param("1E", "memory", 10**18, id="1E is the exa suffix, not an exponent"),
        pytest.param("12E", "memory", 12 * 10**18,
                     id="12E is past int64 but decimal suffixes are not capped"),
        pytest.param("1E3", "memory", 1000, id="1E3 with digits after it is an exponent"),
        pytest.param("1Ei", "memory", EI, id="1Ei is the binary exbi suffix"),
        pytest.param("1e-3", "cpu", 1, id="1e-3 of cpu is one millicore"),
        pytest.param("1e+3", "memory", 1000, id="an exponent may carry a plus sign"),
        pytest.param("1.3E+6", "memory", 1_300_000, id="a fractional mantissa with an exponent"),
        pytest.param(".5", "cpu", 500, id="a number may start with the decimal point"),
        pytest.param("5.", "cpu", 5000, id="a number may end with the decimal point"),
        pytest.param("1.G", "memory", 10**9, id="a trailing point before a suffix is accepted"),
        pytest.param("+2k", "memory", 2000, id="a leading plus sign is accepted"),
        pytest.param("00100m", "cpu", 100, id="leading zeros are accepted"),
        pytest.param("100.035k", "memory", 100_035, id="a fractional kilo that is whole in units"),
        pytest.param("0.1m", "cpu", 1, id="0.1m of cpu rounds up to 1 millicore like MilliValue"),
        pytest.param("0.5", "memory", 1, id="half a byte of memory rounds up to 1 like Value"),
        pytest.param("1.0001", "cpu", 1001, id="a request between millicores rounds up"),
        pytest.param("500n", "cpu", 1, id="500 nanocores round up to 1 millicore"),
        pytest.param("1000000n", "cpu", 1, id="a million nanocores are exactly 1 millicore"),
        pytest.param("1500000n", "cpu", 2, id="1.5 millicores in nanocores round up to 2"),
        pytest.param("250u", "cpu", 1, id="250 microcores round up to 1 millicore"),
        pytest.param("2000u", "cpu", 2, id="2000 microcores are exactly 2 millicores"),
        pytest.param("5n", "memory", 1, id="5 nanobytes of memory round up to 1 byte"),
        pytest.param("0.000000000001Ki", "memory", 1,
                     id="a value below one nano rounds up to 1n and then to 1 byte"),
        pytest.param("0.30000000000000004", "cpu", 301,
                     id="a float-looking string is read exactly, so it rounds up to 301m"),
        pytest.param("0", "cpu", 0, id="zero is zero"),
        pytest.param("0Gi", "memory", 0, id="zero with a binary suffix is zero"),
        pytest.param("-0", "cpu", 0, id="negative zero is zero"),
        pytest.param("9Ei", "memory", INT64_MAX, id="9Ei is capped at 2^63-1 as kube caps it"),
        pytest.param("9223372036854775807Ki", "memory", INT64_MAX,
                     id="a huge Ki value is capped at 2^63-1"),
        pytest.param(" 1Gi ", "memory", GI,
                     id="surrounding whitespace is trimmed as Quantity.UnmarshalJSON trims it"),
        pytest.param(2, "cpu", 2000, id="a YAML integer cpu: 2 is two cores"),
        pytest.param(0.5, "cpu", 500, id="a YAML float cpu: 0.5 is half a core"),
        pytest.param(0.1, "cpu", 100,
                     id="a YAML float 0.1 is read as the decimal 0.1, not the binary double"),
        pytest.param(1e3, "memory", 1000, id="a YAML float with an exponent"),
        pytest.param(2**70, "memory", 2**70, id="a YAML integer past int64 is kept exactly"),
    ],
)
def test_accepted_quantity_converts_to_integer_units(raw, resource, units):
    assert parse_quantity(raw).units(resource) == units


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        pytest.param("100m", Fraction(1, 10), id="100m is exactly one tenth"),
        pytest.param("1Ki", Fraction(KI), id="1Ki is 1024"),
        pytest.param("1Mi", Fraction(MI), id="1Mi is 1024^2"),
        pytest.param("1Gi", Fraction(GI), id="1Gi is 1024^3"),
        pytest.param("1Ti", Fraction(TI), id="1Ti is 1024^4"),
        pytest.param("1Pi", Fraction(PI), id="1Pi is 1024^5"),
        pytest.param("1Ei", Fraction(EI), id="1Ei is 1024^6"),
        pytest.param("1k", Fraction(10**3), id="1k is 1000"),
        pytest.param("1M", Fraction(10**6), id="1M is 10^6"),
        pytest.param("1G", Fraction(10**9), id="1G is 10^9"),
        pytest.param("1T", Fraction(10**12), id="1T is 10^12"),
        pytest.param("1P", Fraction(10**15), id="1P is 10^15"),
        pytest.param("1E", Fraction(10**18), id="1E is 10^18"),
        pytest.param("5n", 5 * NANO, id="5n is five billionths"),
        pytest.param("4u", Fraction(4, 10**6), id="4u is four millionths"),
        pytest.param("0.5Mi", Fraction(MI, 2), id="a fractional binary value"),
        pytest.param("100.035Ki", Fraction(10243584, 100), id="a fractional Ki that is not whole"),
        pytest.param("-100m", Fraction(-1, 10), id="a negative value keeps its sign"),
        pytest.param("3.001n", 4 * NANO, id="3.001n rounds up to 4n at parse time"),
        pytest.param("0.9n", NANO, id="0.9n rounds up to 1n at parse time"),
        pytest.param("1.1E-9", 2 * NANO, id="1.1e-9 rounds up to 2n at parse time"),
        pytest.param("0.00000012345", 124 * NANO, id="a long fraction rounds up to whole nanos"),
        pytest.param("-0.1n", -NANO, id="a negative fraction of a nano rounds away from zero"),
        pytest.param("9Ei", Fraction(INT64_MAX), id="binary suffixes cap at 2^63-1"),
    ],
)
def test_parsed_value_is_exact_as_kube_parses_it(raw, value):
    assert parse_quantity(raw).value == value


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("12x", id="an unknown suffix x"),
        pytest.param("", id="the empty string"),
        pytest.param("   ", id="only whitespace"),
        pytest.param("1.5.5", id="two decimal points"),
        pytest.param("1..5", id="two adjacent decimal points"),
        pytest.param("1 Gi", id="a space between the number and the suffix"),
        pytest.param("1G i", id="a space inside the suffix"),
        pytest.param("--1", id="a doubled sign"),
        pytest.param("+-1", id="two different signs"),
        pytest.param("1e", id="an exponent marker with no digits"),
        pytest.param("-3.01e-", id="an exponent with a sign but no digits"),
        pytest.param("1e1.5", id="a fractional exponent"),
        pytest.param("1ki", id="a lowercase k with the binary i"),
        pytest.param("ki", id="a lowercase binary suffix with no number"),
        pytest.param("1KiB", id="a trailing B after a binary suffix"),
        pytest.param("1K", id="an uppercase K, which is only valid as Ki"),
        pytest.param("1i", id="a bare i"),
        pytest.param(".5i", id="a fraction with a bare i"),
        pytest.param("0.1mi", id="mi is not a suffix"),
        pytest.param("0.1am", id="atto is not a suffix"),
        pytest.param("1.1.M", id="two points before a suffix"),
        pytest.param("1+1.0M", id="a plus sign in the middle"),
        pytest.param("aoeu", id="letters only"),
        pytest.param("1_000", id="an underscore digit separator"),
        pytest.param("0x10", id="a hexadecimal literal"),
        pytest.param("١٠٠m", id="Arabic-Indic digits, which are not ASCII digits"),
        pytest.param("1e٣", id="an Arabic-Indic digit in the exponent"),
        pytest.param("1\n2", id="a newline between digits"),
        pytest.param("1e101", id="an exponent beyond the supported range"),
        pytest.param(True, id="the YAML boolean true"),
        pytest.param(False, id="the YAML boolean false"),
        pytest.param(None, id="None, from a YAML null"),
        pytest.param(["1"], id="a list"),
        pytest.param({"cpu": "1"}, id="a mapping"),
        pytest.param(float("nan"), id="a NaN float"),
        pytest.param(float("inf"), id="an infinite float"),
    ],
)
def test_malformed_quantity_is_rejected_with_the_input_named(raw):
    with pytest.raises(ValueError, match="is not a quantity") as info:
        parse_quantity(raw)
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("Gi", id="a binary suffix with no number"),
        pytest.param("m", id="a milli suffix with no number"),
        pytest.param(".", id="a lone decimal point"),
        pytest.param("-", id="a lone minus sign"),
        pytest.param("+", id="a lone plus sign"),
        pytest.param("e3", id="an exponent with no mantissa"),
    ],
)
def test_digitless_quantity_is_rejected_following_the_documented_grammar(raw):
    # kube's documented grammar requires a digit (<number> ::= <digits> | ...), though its
    # hand-written scanner reads these as zero; a digitless request is a typo, so we reject it
    with pytest.raises(ValueError, match="is not a quantity"):
        parse_quantity(raw)


def test_quantity_keeps_the_users_spelling_for_messages():
    q = parse_quantity(" 1536Mi ")
    assert (str(q), q.text, q.value) == ("1536Mi", "1536Mi", Fraction(1536 * MI))


def test_parsing_a_quantity_again_returns_it_unchanged():
    q = parse_quantity("250m")
    assert parse_quantity(q) is q


def test_quantity_field_validates_and_serializes_as_the_original_text():
    reqs = ResourceRequirements.model_validate({"requests": {"cpu": "250m", "memory": 2}})
    assert isinstance(reqs.requests["cpu"], Quantity)
    assert reqs.model_dump(mode="json") == {"requests": {"cpu": "250m", "memory": "2"},
                                            "limits": {}}


@pytest.mark.parametrize(
    ("resource", "value", "units"),
    [
        pytest.param("cpu", Fraction(1, 3), 334, id="cpu converts to millicores, rounding up"),
        pytest.param("memory", Fraction(1, 3), 1, id="memory converts to bytes, rounding up"),
        pytest.param("pods", Fraction(110), 110, id="pods are a plain count"),
        pytest.param("nvidia.com/gpu", Fraction(2), 2, id="extended resources are plain counts"),
        pytest.param("requests.cpu", Fraction(1, 2), 1,
                     id="only the resource named cpu is counted in millicores"),
    ],
)
def test_to_units_rounds_up_in_the_resources_base_unit(resource, value, units):
    assert to_units(resource, value) == units


@pytest.mark.parametrize(
    ("resource", "units", "text"),
    [
        pytest.param("cpu", 1500, "1500m", id="a fractional core prints in millicores"),
        pytest.param("cpu", 2000, "2", id="whole cores print without a suffix"),
        pytest.param("cpu", 1, "1m", id="a single millicore"),
        pytest.param("cpu", 0, "0", id="zero cpu"),
        pytest.param("memory", 2 * GI, "2Gi", id="whole gibibytes print as Gi"),
        pytest.param("memory", 3 * MI, "3Mi", id="whole mebibytes print as Mi"),
        pytest.param("memory", 1536 * MI, "1536Mi", id="1.5Gi prints exactly as 1536Mi"),
        pytest.param("memory", EI, "1Ei", id="the largest binary suffix"),
        pytest.param("memory", 1536, "1536", id="a byte count that is not whole Ki stays plain"),
        pytest.param("memory", 1000, "1000", id="decimal thousands are not given a k suffix"),
        pytest.param("memory", 0, "0", id="zero memory"),
        pytest.param("ephemeral-storage", 100 * GI, "100Gi", id="ephemeral storage uses Gi too"),
        pytest.param("hugepages-2Mi", 4 * MI, "4Mi", id="hugepages use binary suffixes"),
        pytest.param("hugepages-1Gi", 0, "0", id="zero hugepages"),
        pytest.param("pods", 1024, "1024", id="a pod count of 1024 is not written as 1Ki"),
        pytest.param("nvidia.com/gpu", 2, "2", id="a gpu count stays plain"),
    ],
)
def test_format_units_prints_the_shortest_exact_form(resource, units, text):
    assert format_units(resource, units) == text


@pytest.mark.parametrize(
    ("resource", "units"),
    [
        pytest.param(r, u, id=f"{u} units of {r} survive a round trip")
        for r in ("cpu", "memory", "ephemeral-storage", "hugepages-2Mi", "pods", "nvidia.com/gpu")
        for u in (0, 1, 999, 1000, 1024, 1536, 3 * MI, 7 * GI, 5 * EI)
    ],
)
def test_format_units_round_trips_through_the_parser(resource, units):
    assert parse_quantity(format_units(resource, units)).units(resource) == units


@settings(max_examples=300, deadline=None)
@given(
    resource=st.sampled_from(["cpu", "memory", "hugepages-1Gi", "pods", "example.com/widget"]),
    units=st.integers(min_value=-(2**62), max_value=2**62),
)
def test_format_units_round_trips_for_any_integer(resource, units):
    assert parse_quantity(format_units(resource, units)).units(resource) == units
