"""
The one redaction: registered secrets are cut out of any text, however it is spelled.
"""

from __future__ import annotations

import json

from provisioner.errors import ApiError, InvalidRequestError, OutcomeUnknownError
from provisioner.redaction import (
    REDACTED,
    SecretRedactor,
    add_secrets,
    forget_secrets,
    redact,
)

TOKEN = "tok-RECOGNISABLE-0123456789"


class TestSecretRedactor:
    def test_cuts_a_registered_secret_out_of_any_string(self) -> None:
        """A registered secret inside a longer string is replaced, the rest kept."""
        redactor = SecretRedactor([TOKEN])

        scrubbed = redactor.scrub(f"Authorization: Bearer {TOKEN}")

        assert f"Authorization: Bearer {REDACTED}" == scrubbed

    def test_masks_secret_keys_whatever_their_value(self) -> None:
        """Values under token/password/activation-code keys are masked in any case."""
        redactor = SecretRedactor()

        event = redactor(
            None, "info", {"event": "x", "password": "p", "activationCode": "123"}
        )

        assert event == {"event": "x", "password": REDACTED, "activationCode": REDACTED}

    def test_recurses_into_containers_and_objects(self) -> None:
        """Secrets nested in lists, dicts and exception objects are cut out too."""
        redactor = SecretRedactor(["hunter22"])

        event = redactor(
            None,
            "info",
            {
                "event": "x",
                "items": ["a", {"note": "pw hunter22"}],
                "error": ValueError("bad hunter22"),
            },
        )

        assert ["a", {"note": f"pw {REDACTED}"}] == event["items"]
        assert f"bad {REDACTED}" == event["error"]

    def test_ignores_too_short_secrets(self) -> None:
        """A three-character 'secret' would mangle every message, so it is not cut."""
        redactor = SecretRedactor(["cat", "dogs"])

        assert redactor.scrub("a cat, two dogs") == f"a cat, two {REDACTED}"

    def test_longer_secret_is_cut_whole(self) -> None:
        """A secret that contains another is replaced whole, not in pieces."""
        redactor = SecretRedactor(["pass", "password-1234"])

        assert redactor.redact("sent password-1234") == f"sent {REDACTED}"

    def test_cuts_a_secret_as_json_spells_it(self) -> None:
        """An echoed body is JSON inside the message: quotes and accents escaped."""
        secret = 'Pa"ss\\wörd-42'
        redactor = SecretRedactor([secret])
        echoed = f"refused {json.dumps({'password': secret})}"
        ascii_echo = f"refused {json.dumps({'password': secret}, ensure_ascii=False)}"

        assert secret not in redactor.redact(echoed)
        assert json.dumps(secret)[1:-1] not in redactor.redact(echoed)
        assert redactor.redact(echoed) == f'refused {{"password": "{REDACTED}"}}'
        assert redactor.redact(ascii_echo) == f'refused {{"password": "{REDACTED}"}}'


class TestRegistry:
    def test_registered_secrets_are_cut_until_forgotten(self) -> None:
        """``add_secrets`` feeds ``redact``; ``forget_secrets`` empties it (tests)."""
        add_secrets(TOKEN, None, "")
        cut = redact(f"Bearer {TOKEN}")
        forget_secrets()

        assert cut == f"Bearer {REDACTED}"
        assert redact(f"Bearer {TOKEN}") == f"Bearer {TOKEN}"

    def test_an_api_error_redacts_its_message_when_made(self) -> None:
        """An ApiError quoting a password carries (and shows) the message without it."""
        add_secrets("Dev1cePassw0rd")
        body = '{"mac": "00AABB112233", "password": "Dev1cePassw0rd"}'

        error = InvalidRequestError(f"Invalid personId in request {body}", status=400)
        wrapped = OutcomeUnknownError(f"{error.message}; maybe", cause=error)

        for shown in (error.message, str(error), repr(error), wrapped.message):
            assert "Dev1cePassw0rd" not in shown
            assert REDACTED in shown
        assert isinstance(wrapped, ApiError)
