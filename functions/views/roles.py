from __future__ import annotations

from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.selectors import account_for_user, role_arn
from functions.selectors import role_list_for_user
from functions.services import POLICY_TEMPLATES
from functions.views.http import AuthenticatedHttpRequest

_TEMPLATE_LABELS = dict(POLICY_TEMPLATES)


@require_GET
def role_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    account = account_for_user(request.user)
    roles = role_list_for_user(user=request.user).annotate(function_count=Count("functions"))
    rows = [
        {
            "role": role,
            "arn": role_arn(account_id=account.account_id, path=role.path, role_name=role.name),
            "policy_labels": [_TEMPLATE_LABELS.get(t, t) for t in role.policy_templates],
        }
        for role in roles
    ]
    return render(request, "functions/role_list.html", {"rows": rows})
