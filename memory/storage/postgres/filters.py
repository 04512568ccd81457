"""A :class:`Scope` and a :class:`MemoryFilter` as one SQL ``WHERE`` clause
(psycopg ``%s`` placeholders). The scope is always the first clause."""

from __future__ import annotations

from typing import Any

from ... import timeutil
from ...errors import UsageError
from ..records import Memory, MemoryFilter
from ..scope import Scope

MEMORY_COLUMNS = (
    "m.id, m.profile, m.kind, m.content, m.source, m.importance, m.confidence, m.created_at, "
    "m.updated_at, m.source_message_id, m.conversation_id, m.external_id, m.speaker, "
    "m.last_used_at, m.use_count, m.valid_from, m.valid_until, m.superseded_by, "
    "m.expires_at, m.metadata"
)
# PostgreSQL's bigint: a larger id is simply not found.
MAX_ID = 2**63 - 1


def storable(ids: Any) -> list[int]:
    return [int(i) for i in ids if 0 < int(i) <= MAX_ID]


def memory_of(row: tuple[Any, ...]) -> Memory:
    values = list(row)
    values[-1] = dict(values[-1] or {})
    return Memory(*values)


def scope_sql(scope: Scope, alias: str = "m") -> tuple[str, list[Any]]:
    return f"{alias}.profile = ANY(%s)", [list(scope.readable)]


def filter_sql(scope: Scope, filters: MemoryFilter, alias: str = "m") -> tuple[str, list[Any]]:
    where, params = scope_sql(scope, alias)
    clauses = [where]
    f, a = filters, alias
    if f.kinds:
        clauses.append(f"{a}.kind = ANY(%s)")
        params.append(list(f.kinds))
    if f.since:
        clauses.append(f"{a}.created_at >= %s")
        params.append(f.since)
    if f.until:
        clauses.append(f"{a}.created_at <= %s")
        params.append(f.until)
    if f.conversation:
        clauses.append(f"{a}.conversation_id = %s")
        params.append(f.conversation)
    if not f.include_inactive:
        clauses.append(
            f"{a}.superseded_by IS NULL AND {a}.valid_until IS NULL "
            f"AND ({a}.expires_at IS NULL OR {a}.expires_at > %s)"
        )
        params.append(f.now or timeutil.now_iso())
    for key, op, value in f.where:
        if not key.isidentifier():
            raise UsageError(f"Invalid metadata key {key!r}: use letters, digits and _.")
        field = f"({a}.metadata->>%s)"
        if op == "=":
            clauses.append(f"{field} = %s")
        elif op == "~=":
            clauses.append(f"strpos({field}, %s) > 0")
        elif op == "!=":
            clauses.append(f"{field} IS DISTINCT FROM %s")
        else:
            raise UsageError(f"Invalid metadata operator {op!r}: use =, ~= or !=.")
        params += [key, value]
    if f.exclude_kinds:
        clauses.append(f"{a}.kind <> ALL(%s)")
        params.append(list(f.exclude_kinds))
    if f.exclude_ids:
        clauses.append(f"{a}.id <> ALL(%s)")
        params.append(storable(f.exclude_ids) or [0])
    if f.exclude_messages:
        clauses.append(f"coalesce({a}.kind <> 'message' OR {a}.source_message_id <> ALL(%s), true)")
        params.append(storable(f.exclude_messages) or [0])
    return " AND ".join(clauses), params
