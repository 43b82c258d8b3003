"""Reads of access keys, and the lookups on the path of every signed request.

The per-request lookups are single SQL statements: building them through the ORM costs
more than running them, and they run on every API call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Field, Model, QuerySet
from django.http import Http404

from api.models import AccessKey
from console.models import Account
from functions.models import Function


def access_key_list_for_user(*, user: AbstractBaseUser) -> QuerySet[AccessKey]:
    return AccessKey.objects.filter(user_id=user.pk).order_by("created_at", "id")


def access_key_get_for_user(*, user: AbstractBaseUser, access_key_id: str) -> AccessKey:
    """One of the user's own keys; another user's key is as good as missing."""
    try:
        return access_key_list_for_user(user=user).get(access_key_id=access_key_id)
    except AccessKey.DoesNotExist as exc:
        raise Http404("No such access key") from exc


@dataclass(frozen=True)
class SigningKey:
    """An access key named by a signed request, with what authentication needs of its user,
    and the user's function of the name the request's path gives (when it gives one)."""

    access_key: AccessKey
    user_is_active: bool
    account_id: str | None
    function: Function | None = None


@dataclass(frozen=True)
class _Columns:
    """The SQL for a model's concrete fields, and how to turn a row slice back into it."""

    model: type[Model]
    sql: str
    attnames: list[str]
    converters: list[tuple[int, list[Any], Any]]

    @property
    def width(self) -> int:
        return len(self.attnames)

    def load(self, values: Sequence[Any]) -> Any:
        converted = list(values)
        for position, functions, expression in self.converters:
            for convert in functions:
                converted[position] = convert(converted[position], expression, connection)
        return self.model.from_db(connection.alias, self.attnames, converted)


def _columns(model: type[Model], table_alias: str) -> _Columns:
    quote = connection.ops.quote_name
    fields = [field for field in model._meta.concrete_fields if isinstance(field, Field)]
    converters = []
    for position, field in enumerate(fields):
        expression = field.get_col(table_alias)
        functions = connection.ops.get_db_converters(expression) + expression.get_db_converters(
            connection
        )
        if functions:
            converters.append((position, functions, expression))
    return _Columns(
        model=model,
        sql=", ".join(f"{table_alias}.{quote(str(field.column))}" for field in fields),
        attnames=[field.attname for field in fields],
        converters=converters,
    )


@lru_cache(maxsize=1)
def _signing_key_query() -> tuple[str, _Columns, _Columns]:
    quote = connection.ops.quote_name
    keys, functions = _columns(AccessKey, "k"), _columns(Function, "f")
    sql = (
        f"SELECT {keys.sql}, u.{quote('is_active')}, a.{quote('account_id')}, {functions.sql} "
        f"FROM {quote(AccessKey._meta.db_table)} k "
        f"JOIN {quote(get_user_model()._meta.db_table)} u ON u.{quote('id')} = k.{quote('user_id')} "
        f"LEFT JOIN {quote(Account._meta.db_table)} a ON a.{quote('user_id')} = k.{quote('user_id')} "
        f"LEFT JOIN {quote(Function._meta.db_table)} f "
        f"ON f.{quote('owner_id')} = k.{quote('user_id')} AND f.{quote('name')} = %s "
        f"WHERE k.{quote('access_key_id')} = %s"
    )
    return sql, keys, functions


def signing_key_for(*, access_key_id: str, function_name: str | None = None) -> SigningKey | None:
    """The key, its user's state and account id and, when `function_name` is given, that
    function of the user's (None if there is none): one statement for all of them."""
    sql, keys, functions = _signing_key_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [function_name or "", access_key_id])
        row = cursor.fetchone()
    if row is None:
        return None
    user_is_active, account_id = row[keys.width], row[keys.width + 1]
    function_values = row[keys.width + 2 :]
    has_function = function_name is not None and function_values[0] is not None
    return SigningKey(
        access_key=keys.load(row[: keys.width]),
        user_is_active=bool(user_is_active),
        account_id=account_id,
        function=functions.load(function_values) if has_function else None,
    )


@lru_cache(maxsize=1)
def _function_query() -> tuple[str, _Columns]:
    quote = connection.ops.quote_name
    functions = _columns(Function, "f")
    sql = (
        f"SELECT {functions.sql} FROM {quote(Function._meta.db_table)} f "
        f"WHERE f.{quote('owner_id')} = %s AND f.{quote('name')} = %s"
    )
    return sql, functions


def function_for_owner(*, owner_id: int, name: str) -> Function | None:
    """The owner's function of that name ($LATEST), or None."""
    sql, functions = _function_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [owner_id, name])
        row = cursor.fetchone()
    return None if row is None else functions.load(row)
