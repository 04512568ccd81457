"""A :class:`Scope` and a :class:`MemoryFilter` as one SQL ``WHERE`` clause.

The scope is always the first clause, so no query built here can leave it out.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from memory import timeutil
from memory.errors import UsageError
from memory.storage.records import MemoryFilter
from memory.storage.scope import Scope


def marks(n: int) -> str:
    return ",".join("?" * n)


def scope_sql(scope: Scope, alias: str = "m") -> tuple[str, list[Any]]:
    return f"{alias}.profile IN ({marks(len(scope.readable))})", list(scope.readable)


def filter_sql(scope: Scope, filters: MemoryFilter, alias: str = "m") -> tuple[str, list[Any]]:
    """The scope and ``filters`` as a WHERE clause and its parameters. A search
    asks for the same clause a dozen times (each term, speaker, neighbour read):
    built once per scope and filter, unless it reads the clock (no ``now``)."""
    if filters.now is None and not filters.include_inactive:
        return _filter_sql(scope, filters, alias)
    where, params = _cached(scope, filters, alias)
    return where, list(params)


@functools.lru_cache(maxsize=256)
def _cached(scope: Scope, filters: MemoryFilter, alias: str) -> tuple[str, tuple[Any, ...]]:
    where, params = _filter_sql(scope, filters, alias)
    return where, tuple(params)


def _filter_sql(scope: Scope, filters: MemoryFilter, alias: str) -> tuple[str, list[Any]]:
    where, params = scope_sql(scope, alias)
    clauses = [where]
    f = filters
    if f.kinds:
        clauses.append(f"{alias}.kind IN ({marks(len(f.kinds))})")
        params += list(f.kinds)
    if f.since:
        clauses.append(f"{alias}.created_at >= ?")
        params.append(f.since)
    if f.until:
        clauses.append(f"{alias}.created_at <= ?")
        params.append(f.until)
    if f.conversation:
        clauses.append(f"{alias}.conversation_id = ?")
        params.append(f.conversation)
    if not f.include_inactive:
        clauses.append(
            f"{alias}.superseded_by IS NULL AND {alias}.valid_until IS NULL "
            f"AND ({alias}.expires_at IS NULL OR {alias}.expires_at > ?)"
        )
        params.append(f.now or timeutil.now_iso())
    for key, op, value in f.where:
        if not key.isidentifier():
            raise UsageError(f"Invalid metadata key {key!r}: use letters, digits and _.")
        field = f"CAST(json_extract({alias}.metadata, '$.' || ?) AS TEXT)"
        if op == "=":
            clauses.append(f"{field} = ?")
        elif op == "~=":
            clauses.append(f"instr({field}, ?) > 0")
        elif op == "!=":
            clauses.append(f"coalesce({field} != ?, 1)")
        else:
            raise UsageError(f"Invalid metadata operator {op!r}: use =, ~= or !=.")
        params += [key, value]
    if f.exclude_kinds:
        clauses.append(f"{alias}.kind NOT IN ({marks(len(f.exclude_kinds))})")
        params += list(f.exclude_kinds)
    if f.exclude_ids:
        clauses.append(f"{alias}.id NOT IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(f.exclude_ids)))
    if f.exclude_messages:
        clauses.append(
            f"coalesce({alias}.kind != 'message' OR {alias}.source_message_id "
            "NOT IN (SELECT value FROM json_each(?)), 1)"
        )
        params.append(json.dumps(list(f.exclude_messages)))
    return " AND ".join(clauses), params
