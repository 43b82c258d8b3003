"""Console forms for creating and configuring functions.

The forms only parse input; the services own the rules (names, limits, reserved keys), so a
service's ValidationError is shown at the form field it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import QueryDict

from functions import services
from functions.models import Architecture, Blueprint, Function, Role, Runtime
from functions.selectors import role_list_for_user

MODE_SCRATCH = "scratch"
MODE_BLUEPRINT = "blueprint"
CREATION_MODES = [
    (MODE_SCRATCH, "Author from scratch"),
    (MODE_BLUEPRINT, "Use a blueprint"),
]

ROLE_BASIC = "basic"
ROLE_EXISTING = "existing"
ROLE_TEMPLATES = "templates"
ROLE_MODES = [
    (ROLE_BASIC, "Create a new role with basic Lambda permissions"),
    (ROLE_EXISTING, "Use an existing role"),
    (ROLE_TEMPLATES, "Create a new role from AWS policy templates"),
]

DELETE_CONFIRMATION = "confirm"


def add_service_errors(
    form: forms.Form,
    error: ValidationError,
    *,
    field_map: Mapping[str, str | None] | None = None,
) -> None:
    """Attach a service's ValidationError to the form: each message at the field it names
    (renamed through `field_map`), anything else as a form-wide error."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    renames = field_map or {}
    for service_field, messages in error.message_dict.items():
        target = renames.get(service_field, service_field)
        form.add_error(target if target in form.fields else None, messages)


class FunctionCreateForm(forms.Form):
    mode = forms.ChoiceField(choices=CREATION_MODES, initial=MODE_SCRATCH)
    blueprint = forms.ModelChoiceField(
        queryset=Blueprint.objects.all(), to_field_name="slug", required=False
    )
    # Names, handlers and limits are checked by the service so the console and the API
    # give the same messages.
    name = forms.CharField(required=False, label="Function name")
    runtime = forms.ChoiceField(choices=Runtime.choices, initial=Runtime.PYTHON_3_11)
    architecture = forms.ChoiceField(choices=Architecture.choices, initial=Architecture.X86_64)
    role_mode = forms.ChoiceField(choices=ROLE_MODES, initial=ROLE_BASIC, label="Execution role")
    existing_role = forms.ModelChoiceField(
        queryset=Role.objects.none(), required=False, label="Existing role"
    )
    role_name = forms.CharField(required=False, label="Role name")
    policy_templates = forms.MultipleChoiceField(
        choices=services.POLICY_TEMPLATES, required=False, label="Policy templates"
    )
    handler = forms.CharField(required=False, initial=services.DEFAULT_HANDLER)
    description = forms.CharField(required=False)
    memory_size = forms.IntegerField(initial=128, label="Memory (MB)")
    timeout = forms.IntegerField(initial=3, label="Timeout (seconds)")

    def __init__(self, *args: Any, owner: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.existing_roles = role_list_for_user(user=owner)
        existing_role = self.fields["existing_role"]
        assert isinstance(existing_role, forms.ModelChoiceField)
        existing_role.queryset = self.existing_roles

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("mode") == MODE_BLUEPRINT and not cleaned.get("blueprint"):
            self.add_error("blueprint", "Choose a blueprint.")
        role_mode = cleaned.get("role_mode")
        if role_mode == ROLE_EXISTING and not cleaned.get("existing_role"):
            self.add_error("existing_role", "Choose an existing role.")
        if role_mode == ROLE_TEMPLATES and not cleaned.get("role_name"):
            self.add_error("role_name", "Enter a name for the new role.")
        if not cleaned.get("handler"):
            cleaned["handler"] = services.DEFAULT_HANDLER
        return cleaned

    @property
    def selected_mode(self) -> str:
        value = self["mode"].value()
        return MODE_BLUEPRINT if value == MODE_BLUEPRINT else MODE_SCRATCH

    @property
    def selected_blueprint_slug(self) -> str:
        return str(self["blueprint"].value() or "")

    @property
    def selected_role_mode(self) -> str:
        value = self["role_mode"].value()
        return value if value in {ROLE_EXISTING, ROLE_TEMPLATES} else ROLE_BASIC

    def create(self) -> Function:
        """Create the function (and its new role, if one was asked for) or nothing at all.
        Raises the services' ValidationError; `add_service_errors` shows it."""
        data = self.cleaned_data
        blueprint: Blueprint | None = None
        if data["mode"] == MODE_BLUEPRINT:
            blueprint = data["blueprint"]
        # A role made from policy templates must not outlive a function that failed.
        with transaction.atomic():
            return services.function_create(
                owner=self.owner,
                name=data["name"],
                role=self._role(),
                runtime=blueprint.runtime if blueprint else data["runtime"],
                architecture=data["architecture"],
                handler=blueprint.handler if blueprint else data["handler"],
                blueprint=blueprint,
                description=data["description"],
                memory_size=data["memory_size"],
                timeout=data["timeout"],
            )

    def _role(self) -> Role | None:
        data = self.cleaned_data
        if data["role_mode"] == ROLE_EXISTING:
            role: Role = data["existing_role"]
            return role
        if data["role_mode"] == ROLE_TEMPLATES:
            return services.role_create(
                owner=self.owner,
                name=data["role_name"],
                policy_templates=list(data["policy_templates"]),
            )
        # None asks the service for a new role with basic permissions.
        return None


FUNCTION_CREATE_ERROR_FIELDS: dict[str, str | None] = {"role": "existing_role"}


class GeneralConfigurationForm(forms.Form):
    description = forms.CharField(required=False)
    memory_size = forms.IntegerField(label="Memory")
    ephemeral_storage = forms.IntegerField(label="Ephemeral storage")
    timeout_minutes = forms.IntegerField(min_value=0, label="Minutes")
    timeout_seconds = forms.IntegerField(min_value=0, max_value=59, label="Seconds")

    @classmethod
    def for_function(cls, function: Function) -> GeneralConfigurationForm:
        minutes, seconds = divmod(function.timeout, 60)
        return cls(
            initial={
                "description": function.description,
                "memory_size": function.memory_size,
                "ephemeral_storage": function.ephemeral_storage,
                "timeout_minutes": minutes,
                "timeout_seconds": seconds,
            }
        )

    def changes(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "description": data["description"],
            "memory_size": data["memory_size"],
            "ephemeral_storage": data["ephemeral_storage"],
            "timeout": data["timeout_minutes"] * 60 + data["timeout_seconds"],
        }


GENERAL_CONFIGURATION_ERROR_FIELDS: dict[str, str | None] = {"timeout": "timeout_seconds"}


@dataclass
class EnvironmentRow:
    key: str = ""
    value: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def is_blank(self) -> bool:
        return not self.key and not self.value


class EnvironmentForm:
    """The environment variables table: parallel `env_key` / `env_value` lists, so rows can
    be added in the browser without renumbering anything."""

    def __init__(self, rows: list[EnvironmentRow]) -> None:
        self.rows = rows
        self.errors: list[str] = []

    @classmethod
    def for_function(cls, function: Function) -> EnvironmentForm:
        return cls([EnvironmentRow(key, value) for key, value in function.environment.items()])

    @classmethod
    def from_post(cls, data: QueryDict) -> EnvironmentForm:
        pairs = zip_longest(data.getlist("env_key"), data.getlist("env_value"), fillvalue="")
        return cls([EnvironmentRow(key.strip(), value) for key, value in pairs])

    def is_valid(self) -> bool:
        seen: set[str] = set()
        for row in self.filled_rows:
            if not row.key:
                row.errors.append("Enter a key for this value.")
            elif row.key in seen:
                row.errors.append(f"The key {row.key} is used more than once.")
            seen.add(row.key)
        return not self.has_errors

    @property
    def filled_rows(self) -> list[EnvironmentRow]:
        return [row for row in self.rows if not row.is_blank]

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(row.errors for row in self.rows)

    def variables(self) -> dict[str, str]:
        return {row.key: row.value for row in self.filled_rows}

    def add_service_errors(self, error: ValidationError) -> None:
        """The service names the offending key in quotes; show such a message at its row."""
        error_dict = getattr(error, "error_dict", None)
        messages = error.message_dict.get("environment", []) if error_dict else error.messages
        if error_dict:
            for other_field, other_messages in error.message_dict.items():
                if other_field != "environment":
                    self.errors.extend(other_messages)
        for message in messages:
            rows = [row for row in self.filled_rows if row.key and repr(row.key) in message]
            for row in rows:
                row.errors.append(message)
            if not rows:
                self.errors.append(message)

    def rows_for_editing(self, blank_rows: int = 1) -> list[EnvironmentRow]:
        """The rows to show in the edit table, with blank ones to fill in without JavaScript."""
        return [*self.filled_rows, *(EnvironmentRow() for _ in range(blank_rows))]


class ExecutionRoleForm(forms.Form):
    role = forms.ModelChoiceField(queryset=Role.objects.none(), empty_label=None)

    def __init__(self, *args: Any, owner: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        assert isinstance(role, forms.ModelChoiceField)
        role.queryset = role_list_for_user(user=owner)


class FunctionDeleteForm(forms.Form):
    confirm = forms.CharField(required=False)

    def clean_confirm(self) -> str:
        value = str(self.cleaned_data.get("confirm", "")).strip()
        if value != DELETE_CONFIRMATION:
            raise ValidationError(
                f"To confirm deletion, enter {DELETE_CONFIRMATION} in the text input field."
            )
        return value


class VersionPublishForm(forms.Form):
    description = forms.CharField(required=False, max_length=256)
