from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from functions.selectors import function_list_for_user
from functions.views.http import AuthenticatedHttpRequest, wants_fragment

# Column key -> ordering; "-key" in ?sort= reverses it.
SORT_COLUMNS = {
    "name": "name",
    "runtime": "runtime",
    "memory": "memory_size",
    "size": "code_size",
    "modified": "last_modified",
    "owner": "owner__username",
}
DEFAULT_SORT = "name"


@dataclass(frozen=True)
class SortColumn:
    key: str
    label: str
    aria_sort: str
    next_sort: str
    numeric: bool = False


def _columns(sort: str, *, show_owner: bool) -> list[SortColumn]:
    labels = [("name", "Function name")]
    if show_owner:
        labels.append(("owner", "Owner"))
    labels += [
        ("runtime", "Runtime"),
        ("memory", "Memory (MB)"),
        ("size", "Code size"),
        ("modified", "Last modified"),
    ]
    columns = []
    for key, label in labels:
        if sort == key:
            state, next_sort = "ascending", f"-{key}"
        elif sort == f"-{key}":
            state, next_sort = "descending", key
        else:
            state, next_sort = "none", key
        columns.append(SortColumn(key, label, state, next_sort, key in {"memory", "size"}))
    return columns


def _ordering(sort: str) -> tuple[str, str]:
    """The validated ?sort= value and its ORM ordering."""
    column = sort.removeprefix("-")
    if column not in SORT_COLUMNS:
        return DEFAULT_SORT, SORT_COLUMNS[DEFAULT_SORT]
    prefix = "-" if sort.startswith("-") else ""
    return sort, f"{prefix}{SORT_COLUMNS[column]}"


@require_GET
def function_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    sort, ordering = _ordering(request.GET.get("sort", DEFAULT_SORT))
    functions = function_list_for_user(user=request.user, name_filter=query).order_by(
        ordering, "pk"
    )
    context = {
        "functions": functions,
        "query": query,
        "sort": sort,
        "show_owner": request.user.is_staff,
        "columns": _columns(sort, show_owner=request.user.is_staff),
    }
    if wants_fragment(request, "function-table"):
        return render(request, "functions/function_list.html#function-table", context)
    context["total"] = function_list_for_user(user=request.user).count()
    return render(request, "functions/function_list.html", context)
