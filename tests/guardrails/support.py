"""Realistic synthetic PII for tests: valid checksums, values no real person holds.

Presidio validates what it finds (Luhn for cards, ISO 7064 for IBANs, and it rejects the
well-known sample SSNs), so test values must be computed rather than copied from examples.
"""

from __future__ import annotations


def luhn_complete(digits: str) -> str:
    """`digits` with the Luhn check digit appended."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: these sit left of the check digit
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def iban(country: str, bban: str) -> str:
    """An IBAN with correct check digits (ISO 13616 / mod 97)."""
    rearranged = bban + country + "00"
    number = int("".join(str(int(ch, 36)) for ch in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


def grouped(value: str, size: int = 4) -> str:
    return " ".join(value[i : i + size] for i in range(0, len(value), size))


CARD = grouped(luhn_complete("452938127764105"))  # a Visa-shaped number
IBAN = grouped(iban("DE", "500105175407324931"))
EMAIL = "marta.kowalczyk@harbourline-advisory.com"
SSN = "536-22-8197"
PHONE = "+1 415 555 0134"
