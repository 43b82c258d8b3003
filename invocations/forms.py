"""Forms behind the Test tab. They only parse the request; the rules live in the services."""

from __future__ import annotations

from django import forms

SHARING_CHOICES = [("private", "Private"), ("shareable", "Shareable")]


class EventEditorForm(forms.Form):
    """The "Test event" form: Save and Test both post it."""

    event = forms.IntegerField(required=False)
    name = forms.CharField(required=False)
    sharing = forms.ChoiceField(choices=SHARING_CHOICES, required=False)
    payload = forms.CharField(required=False, strip=False, widget=forms.Textarea)

    @property
    def shareable(self) -> bool:
        return bool(self.cleaned_data.get("sharing") == "shareable")


class EventRenameForm(forms.Form):
    name = forms.CharField(required=False)
