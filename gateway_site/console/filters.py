"""Filters read from a query string, failing closed.

Dropping a filter whose value does not validate would widen the query without a word: an export
of one advisor's records with a mistyped status would export everyone's. So a bound filter form
that does not validate, or that names a parameter it does not know, is *refused*: the page shows
the errors and no rows, an export or CSV answers 400 and exports nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class FilterForm(forms.Form):
    # Query parameters the view reads besides the filters (a page number, an export format).
    passthrough: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        unknown = sorted(set(self.data) - set(self.fields) - self.passthrough)
        if unknown:
            names = ", ".join(repr(name[:64]) for name in unknown[:5])
            raise forms.ValidationError(
                f"Unknown filter {names}: nothing is shown rather than every record.",
                code="unknown_filter",
            )
        return cleaned

    @property
    def refused(self) -> bool:
        """True when the filters asked for cannot be applied as given (show errors, no rows)."""
        return self.is_bound and not self.is_valid()

    def problems(self) -> list[str]:
        """Each error as one line, the field's label first ("Status: Select a valid choice…")."""
        lines = []
        for name, errors in self.errors.items():
            field = self.fields.get(name)
            label = str(field.label or name.replace("_", " ").capitalize()) if field else ""
            lines += [f"{label}: {error}" if label else str(error) for error in errors]
        return lines


def refused_response(request: HttpRequest, form: FilterForm, *, what: str) -> HttpResponse:
    """A 400 in the console frame naming each invalid filter; `what` (e.g. "exported") says what
    did not happen. The first line of the body's text also reads well to a script."""
    return render(
        request,
        "console/bad_request.html",
        {
            "reason": f"These filters are not valid, so nothing was {what}.",
            "problems": form.problems(),
        },
        status=400,
    )
