"""Console forms for Configuration -> Asynchronous invocation and Destinations. They parse
input; invocations.async_config owns the rules and its messages are shown at the fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser

from console.selectors import account_for_user, function_arn
from functions.models import Function
from functions.selectors import function_list_for_user

CONDITION_SUCCESS = "success"
CONDITION_FAILURE = "failure"
CONDITIONS = [(CONDITION_SUCCESS, "On success"), (CONDITION_FAILURE, "On failure")]
SOURCES = [("async", "Asynchronous invocation")]
DESTINATION_TYPES = [("function", "Lambda function")]
RETRY_CHOICES = [(0, "0"), (1, "1"), (2, "2")]
# The service's field names, as the forms call them.
ASYNC_ERROR_FIELDS = {
    "maximum_retry_attempts": "retry_attempts",
    "maximum_event_age_in_seconds": "age_hours",
    "dead_letter_target_arn": "dead_letter_function",
}
DESTINATION_ERROR_FIELDS = {"on_success": "destination", "on_failure": "destination"}


def _function_choices(
    owner: AbstractBaseUser, *, excluding: Function | None, blank: str
) -> list[tuple[str, str]]:
    account_id = account_for_user(owner).account_id
    functions = function_list_for_user(user=owner).filter(owner_id=owner.pk)
    if excluding is not None:
        functions = functions.exclude(pk=excluding.pk)
    choices = [("", blank)]
    choices += [
        (function_arn(account_id=account_id, function_name=name), name)
        for name in functions.values_list("name", flat=True)
    ]
    return choices


class AsyncInvocationForm(forms.Form):
    """Maximum age of event (hours, minutes, seconds), retry attempts and, on $LATEST, the
    function that receives failed events as its dead-letter target."""

    age_hours = forms.IntegerField(min_value=0, label="Hours")
    age_minutes = forms.IntegerField(min_value=0, max_value=59, label="Minutes")
    age_seconds = forms.IntegerField(min_value=0, max_value=59, label="Seconds")
    retry_attempts = forms.TypedChoiceField(choices=RETRY_CHOICES, coerce=int)
    dead_letter_function = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, function: Function, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["dead_letter_function"]
        assert isinstance(field, forms.ChoiceField)
        choices = _function_choices(function.owner, excluding=function, blank="None")
        current = function.dead_letter_target_arn
        if current and current not in dict(choices):
            # A target set through the API that is not one of the listed functions.
            choices.append((current, current))
        field.choices = choices

    @classmethod
    def initial_for(cls, *, function: Function, retries: int, age: int) -> dict[str, int | str]:
        hours, rest = divmod(age, 3600)
        minutes, seconds = divmod(rest, 60)
        return {
            "age_hours": hours,
            "age_minutes": minutes,
            "age_seconds": seconds,
            "retry_attempts": retries,
            "dead_letter_function": function.dead_letter_target_arn,
        }

    def maximum_event_age(self) -> int:
        data = self.cleaned_data
        return (
            int(data["age_hours"]) * 3600 + int(data["age_minutes"]) * 60 + int(data["age_seconds"])
        )


class DestinationForm(forms.Form):
    source = forms.ChoiceField(choices=SOURCES, initial="async")
    condition = forms.ChoiceField(choices=CONDITIONS, initial=CONDITION_FAILURE)
    destination_type = forms.ChoiceField(choices=DESTINATION_TYPES, initial="function")
    destination = forms.ChoiceField(
        error_messages={"required": "Choose the function that receives the records."}
    )

    def __init__(self, *args: Any, function: Function, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["destination"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _function_choices(
            function.owner, excluding=function, blank="Choose a function"
        )
