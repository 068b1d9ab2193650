"""ai_redact's engine: each kind of personal data, and the look-alikes it must leave alone."""

from __future__ import annotations

import pytest

from aiw.sql.redact import find_pii, iban_valid, luhn_valid, redact, redact_many

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+claims@example.co.uk today", "write to [EMAIL] today"),
        ("call +44 20 7946 0958 now", "call [PHONE] now"),
        ("call (555) 123-4567 or 555.123.4567", "call [PHONE] or [PHONE]"),
        ("mobile 07700900123", "mobile [PHONE]"),
        ("card 4111 1111 1111 1111 used", "card [CARD] used"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("amex 3782 822463 10005", "amex [CARD]"),
        ("card 5500005555555559.", "card [CARD]."),
        ("ssn 123-45-6789", "ssn [NATIONAL_ID]"),
        ("NI number AB 12 34 56 C", "NI number [NATIONAL_ID]"),
        ("NI QQ123456C is not valid", "NI QQ123456C is not valid"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "IBAN [IBAN]"),
        ("IBAN DE89370400440532013000", "IBAN [IBAN]"),
    ],
)
def test_each_kind_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 declined",  # Luhn-invalid: an order number, not a card
        "ref 4111111111111112",
        "iban GB00WEST12345698765432",  # mod-97 fails
        "ssn 000-12-3456 and 666-12-3456",  # areas never issued
        "incident on 2024-01-15 for 12,500.00 under policy 1234567",
        "claim CLM-000123456 filed in 2023",
    ],
)
def test_look_alikes_are_kept(text: str) -> None:
    assert redact(text) == text


def test_checks() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert not luhn_valid("41111x")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB83WEST12345698765432")


def test_mixed_text_and_positions() -> None:
    text = "Mail a@b.io, card 4111111111111111, phone +1 415 555 0100."
    kinds = [f.kind for f in find_pii(text)]
    assert kinds == ["EMAIL", "CARD", "PHONE"]
    assert redact(text) == "Mail [EMAIL], card [CARD], phone [PHONE]."


def test_redact_many_keeps_none_and_order() -> None:
    assert redact_many(["x@y.com", None, "plain", "x@y.com"]) == ["[EMAIL]", None, "plain", "[EMAIL]"]
