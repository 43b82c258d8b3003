from __future__ import annotations

import textwrap

from django.contrib.auth.models import User

from functions.models import Function
from functions.services import function_create
from invocations.models import Invocation
from invocations.services import invocation_submit, invocation_wait


def make_function(owner: User, code: str, *, name: str = "fn", **config: object) -> Function:
    return function_create(
        owner=owner,
        name=name,
        role=None,
        files={"lambda_function.py": textwrap.dedent(code)},
        **config,  # type: ignore[arg-type]
    )


def invoke(function: Function, payload: str = "{}") -> Invocation:
    return invocation_wait(invocation=invocation_submit(function=function, payload=payload))
