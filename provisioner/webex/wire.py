"""
The Webex wire format: camelCase JSON outside, snake_case dataclasses inside.

Pure functions over what ``client.py`` sends and reads back: request bodies and
queries, MACs in the API's notation, answers turned into ``Device``,
``ActivationCode``, ``SupportedModel``, ``MacState`` and ``Owner``, and the parts of
an error body the error mapping needs. No session, no I/O: ``ApiClient`` does the
sending, and the mapping of HTTP statuses to errors is ``answers.py``'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yarl import URL

from provisioner.errors import InvalidRequestError, ServerError
from provisioner.models import ActivationCode, Device
from provisioner.redaction import redact
from provisioner.webex.protocol import (
    Caller,
    Location,
    MacState,
    Organization,
    Owner,
    SupportedModel,
)

__all__ = [
    "MAC_IN_USE_CODE",
    "Answer",
    "activation_code_from",
    "api_message",
    "caller_from",
    "camel",
    "device_from",
    "expect_object",
    "is_mac_in_use",
    "list_query",
    "location_from",
    "mac_state_from",
    "next_link",
    "organization_from",
    "owner_body",
    "owner_from",
    "page_items",
    "parse_json",
    "read_mac",
    "retry_after_seconds",
    "snake",
    "supported_model_from",
    "tracking_id_of",
    "wire_mac",
]

MAC_IN_USE_CODE = 5675
_MAC_IN_USE_TEXT = re.compile(r"mac address is (already )?in use", re.IGNORECASE)
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_MAC_SEPARATORS = re.compile(r"[\s:\-.]")
_HEX12 = re.compile(r"[0-9A-F]{12}")


@dataclass(frozen=True, slots=True)
class Answer:
    """
    One HTTP answer, read and parsed: what the error mapping and the calls need.
    """

    status: int
    body: Any
    tracking_id: str
    reason: str = ""
    retry_after: str | None = None
    links: tuple[str, ...] = ()


# -- answers: bodies, headers and error details ----------------------------------------


def parse_json(raw: bytes) -> Any:
    """
    Return the JSON in ``raw``, or None when it is empty or not JSON.
    """
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None  # gateway HTML or plain text: the status and reason say enough


def tracking_id_of(header: str | None, body: Any, ours: str) -> str:
    """
    Return the answer's tracking id: the header's, the body's, or the one we sent.
    """
    if header:
        # Seen in the wild echoed twice, comma-joined: "X, X".
        return header.split(",")[0].strip()
    if isinstance(body, dict) and isinstance(body.get("trackingId"), str):
        return str(body["trackingId"])
    return ours


def api_message(body: Any) -> str | None:
    """
    Return the human message of an error body, or None when it carries none.
    """
    if not isinstance(body, dict):
        return None
    message = body.get("message")
    if isinstance(message, str) and message:
        return message
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        description = errors[0].get("description")
        if isinstance(description, str) and description:
            return description
    return None


def is_mac_in_use(body: Any, message: str) -> bool:
    """
    Tell whether an error body or message says the MAC is already registered.
    """
    codes: list[Any] = []
    if isinstance(body, dict):
        codes.append(body.get("errorCode"))
        for item in body.get("errors") or []:
            if isinstance(item, dict):
                codes.append(item.get("errorCode"))
                if _MAC_IN_USE_TEXT.search(str(item.get("description") or "")):
                    return True
    return (
        MAC_IN_USE_CODE in codes
        or "5675" in codes
        or bool(_MAC_IN_USE_TEXT.search(message))
    )


def retry_after_seconds(text: str | None) -> float | None:
    """
    Read an integer-seconds ``Retry-After``; None when absent or unreadable.
    """
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None  # an HTTP-date: no Webex SDK has seen one; use the default
    return value if value >= 0 else None


def next_link(links: tuple[str, ...]) -> URL | None:
    """
    Return the ``rel="next"`` target of the ``Link`` headers, or None on the last page.
    """
    for header in links:
        for target, params in _LINK.findall(header):
            if re.search(r'rel\s*=\s*"?next"?', params):
                # Verbatim: the API's own encoding, no re-sent parameters.
                return URL(target, encoded=True)
    return None


def expect_object(answer: Answer) -> dict[str, Any]:
    """
    Return the answer's JSON object.

    Raises:
        ServerError: a success answered without one.
    """
    if isinstance(answer.body, dict):
        return answer.body
    raise ServerError(
        f"the API answered {answer.status} without the expected JSON object",
        status=answer.status,
        tracking_id=answer.tracking_id,
    )


def page_items(body: Any) -> list[Any]:
    """
    Return the ``items`` of a list page (none when the body is not an object).
    """
    items: list[Any] = body.get("items", []) if isinstance(body, dict) else []
    return items


# -- requests: MACs, owners and queries ------------------------------------------------


def wire_mac(text: str) -> str:
    """
    Return a MAC as the API takes it: 12 upper-case hex digits.

    Raises:
        InvalidRequestError: the text is not a MAC.
    """
    mac = _MAC_SEPARATORS.sub("", text).upper()
    if not _HEX12.fullmatch(mac):
        raise InvalidRequestError(
            f"not a MAC address: {text!r}; a MAC is 12 hex digits, e.g. 00AABB112233"
        )
    return mac


def read_mac(value: Any) -> str | None:
    """
    Return an answer's MAC as 12 upper-case hex digits, or None when it has none.
    """
    if not isinstance(value, str) or not value:
        return None
    # roomdesk devices answer "11:22:33:44:AA:FF"; phones "D82E3EEF4E5C".
    return _MAC_SEPARATORS.sub("", value).upper()


def camel(name: str) -> str:
    """
    Return a snake_case name in camelCase.
    """
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    """
    Return a camelCase name in snake_case.
    """
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def owner_body(workspace_id: str | None, person_id: str | None) -> dict[str, str]:
    """
    Return the owner part of a request body.

    Raises:
        InvalidRequestError: not exactly one of the two is given.
    """
    if bool(workspace_id) == bool(person_id):
        raise InvalidRequestError("give exactly one of workspace_id and person_id")
    return (
        {"workspaceId": workspace_id} if workspace_id else {"personId": str(person_id)}
    )


def list_query(filters: Mapping[str, str], page_size: int | None) -> dict[str, str]:
    """
    Return the query of a device list: camelCase filters, the MAC in wire form.
    """
    params = {camel(name): value for name, value in filters.items()}
    if "mac" in params:
        params["mac"] = wire_mac(params["mac"])
    if page_size is not None:
        params["max"] = str(page_size)
    return params


# -- answers into dataclasses ----------------------------------------------------------


def device_from(data: Mapping[str, Any]) -> Device:
    """
    Return a device object of the API as a ``Device``.
    """
    tags = data.get("tags")
    return Device(
        id=str(data.get("id") or ""),
        mac=read_mac(data.get("mac")),
        product=_text(data.get("product")),
        type=_text(data.get("type")),
        display_name=_text(data.get("displayName")),
        workspace_id=_text(data.get("workspaceId")) or _text(data.get("placeId")),
        person_id=_text(data.get("personId")),
        org_id=_text(data.get("orgId")),
        tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else (),
        connection_status=_text(data.get("connectionStatus")),
        created=_text(data.get("created")),
        serial=_text(data.get("serial")),
        software=_text(data.get("software")),
        ip=_text(data.get("ip")),
    )


def activation_code_from(data: Mapping[str, Any]) -> ActivationCode:
    """
    Return an activation code answer as an ``ActivationCode``.
    """
    return ActivationCode(
        code=str(data.get("code") or ""),
        expiry_time=str(data.get("expiryTime") or ""),
        device_id=data.get("id"),
    )


def supported_model_from(data: Mapping[str, Any]) -> SupportedModel:
    """
    Return one ``supportedDevices`` entry as a ``SupportedModel``.
    """
    return SupportedModel(
        model=str(data.get("model") or ""),
        display_name=str(data.get("displayName") or data.get("model") or ""),
        type=_text(data.get("type")),
        manufacturer=_text(data.get("manufacturer")),
        managed_by=_text(data.get("managedBy")),
        supported_for=_strings(data.get("supportedFor")),
        onboarding_methods=_strings(data.get("onboardingMethod")),
    )


def mac_state_from(item: Mapping[str, Any]) -> MacState:
    """
    Return one ``macStatus`` entry of the validateMacs answer as a ``MacState``.
    """
    message = item.get("message")
    return MacState(
        mac=read_mac(item.get("mac")) or "",
        state=str(item.get("state") or ""),
        error_code=item.get("errorCode"),
        # The API's words reach the report: the same redaction as an error message.
        message=redact(message) if isinstance(message, str) else None,
    )


def owner_from(data: Mapping[str, Any]) -> Owner:
    """
    Return a workspace or person as an ``Owner``, its other text fields in snake_case;
    a person's first address of ``emails`` is ``extra["email"]``.
    """
    extra = {
        snake(key): value
        for key, value in data.items()
        if isinstance(value, str) and key not in ("id", "displayName")
    }
    emails = data.get("emails")
    if isinstance(emails, list) and emails and isinstance(emails[0], str):
        extra.setdefault("email", emails[0])
    return Owner(
        id=str(data.get("id") or ""),
        display_name=_text(data.get("displayName")),
        emails=_strings(data.get("emails")),
        location_id=_text(data.get("locationId")),
        extra=extra,
    )


def location_from(data: Mapping[str, Any]) -> Location:
    """
    Return a ``GET /locations/{id}`` answer as a ``Location``.
    """
    return Location(id=str(data.get("id") or ""), name=_text(data.get("name")))


def caller_from(data: Mapping[str, Any]) -> Caller:
    """
    Return ``GET /people/me``'s person: id, org, first email, display name.
    """
    emails = _strings(data.get("emails"))
    return Caller(
        id=str(data.get("id") or ""),
        org_id=_text(data.get("orgId")),
        email=emails[0] if emails else None,
        display_name=_text(data.get("displayName")),
    )


def organization_from(data: Mapping[str, Any]) -> Organization:
    """
    Return ``GET /organizations/{orgId}``'s org: id and display name.
    """
    return Organization(
        id=str(data.get("id") or ""), display_name=_text(data.get("displayName"))
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return (str(value),) if isinstance(value, str) and value else ()
