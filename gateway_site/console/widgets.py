"""Date and time fields that read as ISO 8601 in UTC, whatever the browser's locale.

A native `type=date` or `datetime-local` input shows the browser's format (mm/dd/yyyy in en-US)
under labels that say UTC; a text input with an ISO placeholder shows what the server parses and
what every table prints (yyyy-mm-dd hh:mm).
"""

from __future__ import annotations

from typing import Any

from django import forms

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M"
# Accepted as typed or as older links wrote them (the `T` of datetime-local).
DATE_INPUT_FORMATS = [DATE_FORMAT]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
]


def _attrs(placeholder: str, size: int, extra: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "placeholder": placeholder,
        "inputmode": "numeric",
        "autocomplete": "off",
        "spellcheck": "false",
        "size": size,
        "data-iso-date": "",  # search-as-you-type waits for `change` on these (console.js)
        **(extra or {}),
    }


class IsoDateInput(forms.DateInput):
    input_type = "text"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=_attrs("yyyy-mm-dd", 10, attrs), format=DATE_FORMAT)


class IsoDateTimeInput(forms.DateTimeInput):
    input_type = "text"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=_attrs("yyyy-mm-dd hh:mm", 16, attrs), format=DATETIME_FORMAT)


def iso_date_field(**kwargs: Any) -> forms.DateField:
    return forms.DateField(input_formats=DATE_INPUT_FORMATS, widget=IsoDateInput(), **kwargs)


def iso_datetime_field(**kwargs: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        input_formats=DATETIME_INPUT_FORMATS, widget=IsoDateTimeInput(), **kwargs
    )
