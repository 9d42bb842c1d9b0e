"""
MAC normalisation: every common notation in, 12 upper-case hex digits out.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.intake.mac import normalise_mac, numeric_mac_problem, numeric_mac_text

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


@pytest.mark.parametrize(
    "text", ["1.12233E+11", "1,12233E+11", "1.2E+11", "8.8E+10", "-1.12233E+11"]
)
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
        # A template's placeholder left in: X is no hex digit either.
        ("AA:BB:CC:DD:EE:XX", "'X' is not a hex digit"),
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


TEXT_FIX = "format the column as Text and re-enter the MAC"
RETYPE = "format the column as Text and retype the MAC from the device's label"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the MAC is empty"),
        (
            "000000000000",
            (
                "000000000000 is a placeholder, not a device's MAC; copy the MAC from "
                "the device's label or box"
            ),
        ),
        (
            "AA:BB:CC:DD:EE:GZ",
            (
                "not a MAC address: 'G', 'Z' is not a hex digit; a MAC is 12 hex digits "
                "(0-9, A-F), e.g. AA:BB:CC:DD:EE:FF"
            ),
        ),
        (
            "AABBCCDDEE",
            (
                "a MAC has 12 hex digits but this has 10; check for a missing or extra "
                "digit"
            ),
        ),
        (
            "1.12233E+11",
            "the spreadsheet turned this MAC into a number in scientific notation; "
            + TEXT_FIX,
        ),
        (
            "112233445566.00",
            "the spreadsheet turned this MAC into a number (it ends in a decimal "
            "point); " + TEXT_FIX,
        ),
        (
            "1122334455",
            "this MAC has only 10 digits: the spreadsheet probably took it for a "
            "number and dropped its leading zeros (was it 001122334455?); "
            + TEXT_FIX
            + " with its leading zeros",
        ),
    ],
)
def test_each_message_in_full(text: str, message: str) -> None:
    """Every refusal says, word for word, what is wrong and what to do."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        normalise_mac(text)


def test_bytes_without_leading_zeros_keep_their_order() -> None:
    """Each short byte gets its zero in front, never behind."""
    assert normalise_mac("a:b:c:d:e:f") == "0A0B0C0D0E0F"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("inf"), f"this MAC cell holds the number inf, not a MAC; {RETYPE}"),
        (
            112233.5,
            (
                "this MAC cell holds the number 112233.5 (a fraction), not a MAC: the "
                f"spreadsheet took the MAC for a number; {RETYPE}"
            ),
        ),
        (-5.0, f"this MAC cell holds the number -5, not a MAC; {RETYPE}"),
        (
            0.0,
            "this MAC has only 1 digits: the cell holds the number 0, and a number "
            "cannot keep a MAC's leading zeros (was it 000000000000?); " + RETYPE,
        ),
        (
            1112233445566.0,
            f"this MAC cell holds the number 1112233445566, not a MAC; {RETYPE}",
        ),
        (
            1122334455.0,
            "this MAC has only 10 digits: the cell holds the number 1122334455, and a "
            "number cannot keep a MAC's leading zeros (was it 001122334455?); "
            + RETYPE,
        ),
        (
            112233000000.0,
            "this MAC cell holds the number 112233000000 (shown as 1.12233E+11): its "
            "6 trailing zeros look like rounding, so the last digits may be lost; "
            + RETYPE,
        ),
        (
            100000000000.0,
            "this MAC cell holds the number 100000000000 (shown as 1E+11): its 11 "
            "trailing zeros look like rounding, so the last digits may be lost; "
            + RETYPE,
        ),
    ],
)
def test_numeric_cells_are_described_word_for_word(value: float, message: str) -> None:
    """A number in a MAC cell is named with what it holds and the fix."""
    assert numeric_mac_problem(value) == message


@pytest.mark.parametrize("value", [112233445566.0, 998877665540.0, 0.0 + 1e11 + 7])
def test_exact_twelve_digit_numbers_are_macs(value: float) -> None:
    """A whole 12-digit number without rounding zeros is the MAC (no problem)."""
    assert numeric_mac_problem(value) is None


@pytest.mark.parametrize(
    ("value", "text", "written"),
    [
        (112233000000.0, "112233000000", "1.12233E+11"),
        (-112233445568.0, "-112233445568", "-1.12233E+11"),
        (112233445566.0, "112233445566", "112233445566"),
        (1122334455.0, "1122334455", "1122334455"),
        (11223344556677.0, "11223344556677", "11223344556677"),
    ],
    ids=["rounded", "negative", "exact", "short", "too long"],
)
def test_a_report_writes_a_suspect_number_as_the_spreadsheet_showed_it(
    value: float, text: str, written: str
) -> None:
    """Read back as text (a rerun), a rounded or negative 12-digit number's digits
    would pass for a MAC; written as the spreadsheet showed it, they never do. Texts
    that fail as a MAC anyway, or an exact number, are written as they were."""
    assert numeric_mac_text(value, text) == written
    if written != text:
        with pytest.raises(ValueError, match="scientific notation"):
            normalise_mac(written)
