"""Forms of the Configuration tab's Concurrency section."""

from __future__ import annotations

from typing import Any

from django import forms

USE_UNRESERVED = "unreserved"
RESERVE = "reserve"


class ReservedConcurrencyForm(forms.Form):
    mode = forms.ChoiceField(
        choices=[
            (USE_UNRESERVED, "Use unreserved account concurrency"),
            (RESERVE, "Reserve concurrency"),
        ]
    )
    reserved = forms.IntegerField(
        required=False,
        min_value=0,
        error_messages={
            "invalid": "Reserved concurrency must be a whole number.",
            "min_value": "Reserved concurrency must be 0 or more.",
        },
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == RESERVE and data.get("reserved") is None and not self.errors:
            self.add_error("reserved", "Enter the concurrency to reserve for this function.")
        return data

    @property
    def reserving(self) -> bool:
        mode = self.data.get("mode", self.initial.get("mode"))
        return bool(mode == RESERVE)


class ProvisionedConcurrencyForm(forms.Form):
    # Not "qualifier": that field names the version or alias the page itself shows.
    target = forms.ChoiceField(
        error_messages={
            "required": "Choose a version or an alias.",
            "invalid_choice": "Choose one of the function's versions or aliases.",
        }
    )
    requested = forms.IntegerField(
        min_value=1,
        error_messages={
            "required": "Enter the provisioned concurrency.",
            "invalid": "Provisioned concurrency must be a whole number.",
            "min_value": "Provisioned concurrency must be at least 1.",
        },
    )

    def __init__(self, *args: Any, targets: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        target = self.fields["target"]
        assert isinstance(target, forms.ChoiceField)
        target.choices = [("", "Choose a version or alias"), *targets]
