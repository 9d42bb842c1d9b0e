"""
MAC normalisation: every common notation in, 12 upper-case hex digits out.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.intake.mac import normalise_mac

hex_macs = st.text(alphabet="0123456789abcdefABCDEF", min_size=12, max_size=12).filter(
    lambda mac: mac.upper() not in ("000000000000", "FFFFFFFFFFFF")
)


def _notations(mac: str) -> list[str]:
    pairs = [mac[i : i + 2] for i in range(0, 12, 2)]
    quads = [mac[i : i + 4] for i in range(0, 12, 4)]
    return [
        mac,
        ":".join(pairs),
        "-".join(pairs),
        " ".join(pairs),
        ".".join(quads),
        f"  {mac}\u200b ",
    ]


@given(hex_macs, st.sampled_from(range(6)), st.booleans())
def test_every_notation_normalises_to_upper_hex(
    mac: str, notation: int, lower: bool
) -> None:
    """Any common notation of a MAC, in either case, gives its 12 upper-case digits."""
    text = _notations(mac)[notation]
    text = text.lower() if lower else text.upper()

    assert normalise_mac(text) == mac.upper()


@given(hex_macs)
def test_normalising_is_idempotent(mac: str) -> None:
    """A normalised MAC normalises to itself."""
    once = normalise_mac(mac)

    assert normalise_mac(once) == once


@given(st.text(max_size=30))
def test_anything_else_is_a_value_error_or_a_mac(text: str) -> None:
    """Arbitrary text either normalises to 12 hex digits or raises ValueError."""
    try:
        result, message = normalise_mac(text), ""
    except ValueError as error:
        result, message = "", str(error)

    if result:
        assert len(result) == 12
        assert set(result) <= set("0123456789ABCDEF")
    else:
        assert message


def test_bytes_without_leading_zeros_are_padded() -> None:
    """``0:1b:2c:3d:4e:5f`` (leading zeros dropped per byte) is read as 001B2C3D4E5F."""
    assert normalise_mac("0:1b:2c:3d:4e:5f") == "001B2C3D4E5F"


@pytest.mark.parametrize("text", ["1.12233E+11", "1,12233E+11", "1.2E+11", "8.8E+10"])
def test_scientific_notation_is_named(text: str) -> None:
    """A MAC shown in scientific notation says the spreadsheet turned it into a number."""
    with pytest.raises(ValueError, match="scientific notation") as caught:
        normalise_mac(text)

    assert "format the column as Text" in str(caught.value)


def test_lost_leading_zeros_are_named_with_the_likely_mac() -> None:
    """A short all-digit MAC says the zeros were dropped and shows the padded guess."""
    with pytest.raises(ValueError, match="dropped its leading zeros") as caught:
        normalise_mac("1122334455")

    assert "001122334455" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "padded"), [("11223344556", "011223344556"), ("1", "000000000001")]
)
def test_lost_leading_zeros_hint_up_to_eleven_digits(text: str, padded: str) -> None:
    """Eleven digits (the longest short number) still gets the dropped-zeros hint."""
    with pytest.raises(ValueError, match="dropped its leading zeros") as caught:
        normalise_mac(text)

    assert f"only {len(text)} digits" in str(caught.value)
    assert f"(was it {padded}?)" in str(caught.value)


def test_twelve_decimal_digits_are_a_mac() -> None:
    """Twelve digits are a whole MAC (all hex digits), not a mangled number."""
    assert normalise_mac("112233445566") == "112233445566"


def test_decimal_point_number_is_named() -> None:
    """``112233445566.0`` is named as a MAC the spreadsheet made into a number."""
    with pytest.raises(ValueError, match="into a number"):
        normalise_mac("112233445566.0")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("AABBCCDDEEGG", "'G' is not a hex digit"),
        ("AABBCCDDEE", "has 10"),
        ("AA:BB:CC:DD:EE:FF:00", "has 14"),
        ("000000000000", "placeholder"),
        ("ff:ff:ff:ff:ff:ff", "placeholder"),
        ("   ", "empty"),
    ],
)
def test_invalid_macs_say_what_is_wrong(text: str, fragment: str) -> None:
    """Each kind of bad MAC gets a message naming what is wrong."""
    with pytest.raises(ValueError, match=fragment):
        normalise_mac(text)
