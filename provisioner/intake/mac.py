"""
MAC address normalisation: any common notation to 12 upper-case hex digits.

Spreadsheets mangle MACs that happen to be all decimal digits: they drop the leading
zeros, append ``.0`` or show them in scientific notation. Those cases get a message
that names the mangling and the fix, because "not a valid MAC" alone sends people
looking in the wrong place.
"""

from __future__ import annotations

import re

__all__ = ["normalise_mac"]

_PLAIN = re.compile(r"[0-9A-F]{12}")
_SEPARATORS = re.compile(r"[\s:\-.]")
# 1 or 2 hex digits per group, colon or dash separated: ``0:1b:2c:3d:4e:5f`` is what
# some tools print after dropping the leading zero of each byte.
_GROUPED = re.compile(r"[0-9A-F]{1,2}(?:([:\-])[0-9A-F]{1,2}){5}")
_SCIENTIFIC = re.compile(r"\d(?:[.,]\d+)?E\+?\d{1,3}")
_DECIMAL_FLOAT = re.compile(r"(\d+)[.,]0+")
_INVISIBLE = str.maketrans("", "", "\u200b\u200c\u200d\u2060\ufeff")

_TEXT_FIX = "format the column as Text and re-enter the MAC"


def normalise_mac(text: str) -> str:
    """
    Return ``text`` as 12 upper-case hex digits.

    Accepts ``AABBCCDDEEFF``, ``aa:bb:cc:dd:ee:ff``, ``aa-bb-cc-dd-ee-ff``,
    ``aabb.ccdd.eeff``, space-separated bytes and bytes without their leading zero.

    Raises:
        ValueError: the text is not a MAC; the message says what is wrong and what
            to do about it.
    """
    candidate = text.translate(_INVISIBLE).strip().upper()
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
    if candidate.isdigit() and len(candidate) < 12:
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
    if mac in ("000000000000", "FFFFFFFFFFFF"):
        raise ValueError(
            f"{mac} is a placeholder, not a device's MAC; copy the MAC from the "
            "device's label or box"
        )
    return mac
