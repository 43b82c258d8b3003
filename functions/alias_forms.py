"""The Create alias and Edit alias forms of the Aliases tab."""

from __future__ import annotations

from typing import Any

from django import forms

from functions.alias_services import ALIAS_NAME_MAX, LATEST, Routing


class AliasForm(forms.Form):
    """Name (on create only), description, the version, and an optional weighted
    additional version with the share of invocations it gets, in percent."""

    name = forms.CharField(max_length=ALIAS_NAME_MAX)
    description = forms.CharField(required=False, max_length=256)
    function_version = forms.ChoiceField(label="Version")
    additional_version = forms.ChoiceField(required=False, label="Additional version")
    weight = forms.FloatField(required=False, min_value=0, max_value=100, label="Weight (%)")

    def __init__(self, *args: Any, versions: list[str], editing: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        published = [(number, f"Version {number}") for number in versions]
        self.fields["function_version"].choices = [(LATEST, LATEST), *published]  # type: ignore[attr-defined]
        self.fields["additional_version"].choices = [("", "None"), *published]  # type: ignore[attr-defined]
        if editing:
            del self.fields["name"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("additional_version") and cleaned.get("weight") is None:
            self.add_error("weight", "Enter the share of invocations the additional version gets.")
        return cleaned

    def routing(self) -> Routing | None:
        additional = self.cleaned_data.get("additional_version")
        if not additional:
            return None
        return Routing(additional_version=additional, weight=self.cleaned_data["weight"] / 100)
