"""
MAC address normalisation: any common notation to 12 upper-case hex digits.

Spreadsheets mangle MACs that happen to be all decimal digits: they drop the leading
zeros, append ``.0`` or show them in scientific notation. Those cases get a message
that names the mangling and the fix, because "not a valid MAC" alone sends people
looking in the wrong place.
"""

from __future__ import annotations

import math
import re

__all__ = ["normalise_mac", "numeric_mac_problem", "numeric_mac_text"]

_PLAIN = re.compile(r"[0-9A-F]{12}")
# AABBCCDDEEFF, AA:BB:CC:DD:EE:FF, AA-BB-CC-DD-EE-FF (one separator) or AABB.CCDD.EEFF.
_COMMON = re.compile(
    r"[0-9A-F]{2}([:\-]?)[0-9A-F]{2}(?:\1[0-9A-F]{2}){4}|[0-9A-F]{4}(?:\.[0-9A-F]{4}){2}"
)
_common_notation = _COMMON.fullmatch
_PLACEHOLDERS = frozenset({"000000000000", "FFFFFFFFFFFF"})
_SEPARATORS = re.compile(r"[\s:\-.]")
# 1 or 2 hex digits per group, colon or dash separated: ``0:1b:2c:3d:4e:5f`` is what
# some tools print after dropping the leading zero of each byte.
_GROUPED = re.compile(r"[0-9A-F]{1,2}(?:([:\-])[0-9A-F]{1,2}){5}")
_SCIENTIFIC = re.compile(r"-?\d(?:[.,]\d+)?E\+?\d{1,3}")
_DECIMAL_FLOAT = re.compile(r"(\d+)[.,]0+")
_INVISIBLE = str.maketrans("", "", "\u200b\u200c\u200d\u2060\ufeff")

_TEXT_FIX = "format the column as Text and re-enter the MAC"
_RETYPE = "format the column as Text and retype the MAC from the device's label"
# Two or more trailing zeros on a 12-digit number look like rounding (Excel shows
# 112233445566 in a General cell as 1.12233E+11 and keeps 112233000000 once the
# sheet went through CSV). A real all-digit MAC ends in 00 one time in a hundred;
# retyping it as text costs that user a minute, a wrong MAC costs a wrong device.
_ROUNDING_ZEROS = 2


def normalise_mac(text: str) -> str:
    """
    Return ``text`` as 12 upper-case hex digits.

    Accepts ``AABBCCDDEEFF``, ``aa:bb:cc:dd:ee:ff``, ``aa-bb-cc-dd-ee-ff``,
    ``aabb.ccdd.eeff``, space-separated bytes and bytes without their leading zero.

    Raises:
        ValueError: the text is not a MAC; the message says what is wrong and what
            to do about it.
    """
    candidate = text.upper()
    if _common_notation(candidate):
        # The notations nearly every sheet uses, before the general path below: a
        # 100,000-row sheet spends most of its MAC time here.
        mac = candidate.replace(":", "").replace("-", "").replace(".", "")
        if mac not in _PLACEHOLDERS:
            return mac
        return _check_usable(mac)
    candidate = candidate.translate(_INVISIBLE).strip()
    if not candidate:
        raise ValueError("the MAC is empty")
    if _PLAIN.fullmatch(candidate):
        return _check_usable(candidate)
    if _GROUPED.fullmatch(candidate):
        parts = re.split(r"[:\-]", candidate)
        return _check_usable("".join(part.rjust(2, "0") for part in parts))
    _raise_for_mangled_number(candidate)
    digits = _SEPARATORS.sub("", candidate)
    bad = sorted({ch for ch in digits if ch not in "0123456789ABCDEF"})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise ValueError(
            f"not a MAC address: {shown} is not a hex digit; a MAC is 12 hex digits "
            "(0-9, A-F), e.g. AA:BB:CC:DD:EE:FF"
        )
    if len(digits) != 12:
        raise ValueError(
            f"a MAC has 12 hex digits but this has {len(digits)}; check for a "
            "missing or extra digit"
        )
    return _check_usable(digits)


def numeric_mac_problem(value: float) -> str | None:
    """
    Say what is wrong with a MAC cell stored as a number, or None when it is exact.

    A spreadsheet cell that holds a number cannot hold leading zeros or hex letters,
    and Excel rounds numbers it shows in scientific notation; only a whole number of
    exactly 12 digits that does not end in rounding zeros carries a MAC for sure.
    """
    if not math.isfinite(value):
        return f"this MAC cell holds the number {value}, not a MAC; " + _RETYPE
    whole = int(value)
    digits = str(abs(whole))
    shown = _scientific(value)
    if whole != value:
        return (
            f"this MAC cell holds the number {value!r} (a fraction), not a MAC: the "
            "spreadsheet took the MAC for a number; " + _RETYPE
        )
    if whole < 0 or len(digits) > 12:
        return f"this MAC cell holds the number {whole}, not a MAC; " + _RETYPE
    if len(digits) < 12:
        return (
            f"this MAC has only {len(digits)} digits: the cell holds the number "
            f"{whole}, and a number cannot keep a MAC's leading zeros (was it "
            f"{digits.rjust(12, '0')}?); " + _RETYPE
        )
    zeros = len(digits) - len(digits.rstrip("0"))
    if zeros >= _ROUNDING_ZEROS:
        return (
            f"this MAC cell holds the number {whole} (shown as {shown}): its "
            f"{zeros} trailing zeros look like rounding, so the last digits may be "
            "lost; " + _RETYPE
        )
    return None


def numeric_mac_text(value: float, text: str) -> str:
    """
    The text a report writes for a MAC cell stored as the number ``value`` (``text``
    is its digits, as the row holds them).

    A report is read back as text (``rerun``), where the cell is no longer a number:
    digits of a suspect number that still read as a MAC (a rounded or negative
    12-digit number) would pass. Those are written as a spreadsheet shows them
    (1.12233E+11), which reads back as a number mangled by a spreadsheet; every other
    cell keeps its text.
    """
    if numeric_mac_problem(value) is None:
        return text
    try:
        normalise_mac(text)
    except ValueError:
        return text
    return _scientific(value)


def _scientific(value: float) -> str:
    """
    Render ``value`` as Excel's General format shows a 12-digit number (1.12233E+11).
    """
    mantissa, exponent = f"{value:.5E}".split("E")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}E+{int(exponent):02d}"


def _raise_for_mangled_number(candidate: str) -> None:
    """
    Raise when ``candidate`` is what a spreadsheet makes of a MAC it took for a number.
    """
    if _SCIENTIFIC.fullmatch(candidate):
        raise ValueError(
            "the spreadsheet turned this MAC into a number in scientific notation; "
            + _TEXT_FIX
        )
    float_match = _DECIMAL_FLOAT.fullmatch(candidate)
    if float_match:
        raise ValueError(
            "the spreadsheet turned this MAC into a number (it ends in a decimal "
            "point); " + _TEXT_FIX
        )
    # "<= 12" or "< 13" would read the same: 12 digits matched _PLAIN before here.
    if candidate.isdigit() and len(candidate) < 12:  # pragma: no mutate
        padded = candidate.rjust(12, "0")
        raise ValueError(
            f"this MAC has only {len(candidate)} digits: the spreadsheet probably "
            f"took it for a number and dropped its leading zeros (was it {padded}?); "
            + _TEXT_FIX
            + " with its leading zeros"
        )


def _check_usable(mac: str) -> str:
    """
    Refuse the all-zero and broadcast addresses, which no device carries.
    """
    if mac in _PLACEHOLDERS:
        raise ValueError(
            f"{mac} is a placeholder, not a device's MAC; copy the MAC from the "
            "device's label or box"
        )
    return mac
