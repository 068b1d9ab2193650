"""Find and mask personal data in free text: the engine behind ``ai_redact``.

Five kinds, each replaced by a tag: e-mail addresses ``[EMAIL]``, IBANs ``[IBAN]`` (only when the
ISO 13616 mod-97 check passes), payment card numbers ``[CARD]`` (13 to 19 digits, only when the
Luhn check passes), national identifiers ``[NATIONAL_ID]`` (US social security numbers, UK
national insurance numbers) and telephone numbers ``[PHONE]``.

Matches are found kind by kind in that order of precedence and never overlap: a span claimed by an
earlier kind is not looked at again. A digit run shaped like a card number that fails the Luhn
check is *kept* as it is and also shields its digits from the phone pattern, so that an order or
policy number is not mistaken for a telephone number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["PII_KINDS", "Finding", "find_pii", "iban_valid", "luhn_valid", "redact", "redact_many"]

PII_KINDS = ("EMAIL", "IBAN", "CARD", "NATIONAL_ID", "PHONE")
"""The tags :func:`redact` writes, in order of precedence."""

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-])")
# Country code, two check digits, then 11 to 30 alphanumerics, optionally in groups of four.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
# Card layouts: an unbroken run, groups of four (Visa, Mastercard, Discover, 19-digit Maestro),
# or 4-6-5 (American Express). Separators are one space or one hyphen.
_CARD = re.compile(r"(?<![\d-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{4,5})(?![\d-])")
# US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000; separated by - or space.
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
# UK NINO: prefix letters exclude D F I Q U V (and O second), and the pairs BG GB KN NK NT TN ZZ.
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])",
    re.IGNORECASE,
)
# Telephone numbers: an optional +country code, an optional (area) part, then two to five digit
# groups. The digit count is checked after matching (see _phone_ok).
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?(?:\d{10,11}|\d{2,5}(?:[ .-]\d{2,5}){0,4})(?![\w])"
)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn (mod 10) check used by payment cards."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """Whether ``iban`` (spaces allowed) passes the ISO 13616 mod-97 check."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _phone_ok(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    if text.startswith("+"):
        return 8 <= digits <= 15
    has_sep = any(ch in " .-()" for ch in text)
    if not has_sep:
        # An unbroken run is a phone number only at the length of a national number.
        return 10 <= digits <= 11
    groups = re.split(r"[ .-]+", text)
    # Dates (2024-01-15) are not phone numbers, nor is an SSN-shaped 3-2-4 run that failed the
    # SSN rules.
    shape = [len(g) for g in groups]
    if shape in ([4, 2, 2], [2, 2, 4], [3, 2, 4]):
        return False
    return 9 <= digits <= 15


@dataclass(frozen=True)
class Finding:
    """One piece of personal data found in a text."""

    kind: str
    start: int
    end: int
    text: str


def _finders() -> list[tuple[str, re.Pattern[str], Callable[[str], bool | None]]]:
    # Each accept() returns True (redact), False (ignore) or None (keep and shield from later kinds).
    def card(s: str) -> bool | None:
        return True if luhn_valid(re.sub(r"[ -]", "", s)) else None

    return [
        ("EMAIL", _EMAIL, lambda s: True),
        ("IBAN", _IBAN, lambda s: iban_valid(s) or None),
        ("CARD", _CARD, card),
        ("NATIONAL_ID", _SSN, lambda s: True),
        ("NATIONAL_ID", _NINO, lambda s: True),
        ("PHONE", _PHONE, _phone_ok),
    ]


_FINDERS = _finders()


def find_pii(text: str) -> list[Finding]:
    """Every piece of personal data in ``text``, ordered by position, never overlapping."""
    taken: list[tuple[int, int]] = []
    found: list[Finding] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for kind, pattern, accept in _FINDERS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if not free(start, end):
                continue
            verdict = accept(m.group())
            if verdict is False:
                continue
            taken.append((start, end))
            if verdict:
                found.append(Finding(kind, start, end, m.group()))
    found.sort(key=lambda f: f.start)
    return found


def redact(text: str) -> str:
    """``text`` with every e-mail, IBAN, card number, national ID and phone number replaced.

    Example:
        >>> redact("Call +44 20 7946 0958 or write to jo@example.com")
        'Call [PHONE] or write to [EMAIL]'
    """
    findings = find_pii(text)
    if not findings:
        return text
    out: list[str] = []
    pos = 0
    for f in findings:
        out.append(text[pos : f.start])
        out.append(f"[{f.kind}]")
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def redact_many(texts: Iterable[str | None]) -> list[str | None]:
    """:func:`redact` over many texts; ``None`` stays ``None``; repeated texts are done once."""
    done: dict[str, str] = {}
    out: list[str | None] = []
    for t in texts:
        if t is None:
            out.append(None)
            continue
        hit = done.get(t)
        if hit is None:
            hit = done[t] = redact(t)
        out.append(hit)
    return out
