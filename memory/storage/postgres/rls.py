"""Row-level security: profiles are PostgreSQL roles.

A *member* is a login role in the group role ``mem_member`` whose name is its
profile. The policies below let it see and change rows of its own namespace
(``profile = current_user``) and read the shared namespaces granted to it in
``mem_grants`` (``system``, a team's); nothing else, whatever SQL it sends:
another profile's rows are not counted, updated or deleted. The table owner
(``mem admin init``) is not subject to the policies (RLS is enabled, not
forced): it is the trusted service role that applies each call's Scope in its
queries, as the SQLite backend does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

MEMBER_GROUP = "mem_member"

_FUNCTIONS = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mem_member') THEN
    CREATE ROLE mem_member NOLOGIN;
  END IF;
END $$;
CREATE TABLE IF NOT EXISTS mem_grants (
  namespace text NOT NULL, member text NOT NULL, PRIMARY KEY (namespace, member));
ALTER TABLE mem_grants ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS mem_grants_own ON mem_grants;
CREATE POLICY mem_grants_own ON mem_grants FOR SELECT USING (member = current_user::text);
CREATE OR REPLACE FUNCTION mem_writes(namespace text) RETURNS boolean
  STABLE LANGUAGE sql AS $$ SELECT namespace = current_user::text $$;
CREATE OR REPLACE FUNCTION mem_reads(namespace text) RETURNS boolean
  STABLE LANGUAGE sql AS $$
  SELECT namespace = current_user::text OR EXISTS (
    SELECT 1 FROM mem_grants g WHERE g.namespace = $1 AND g.member = current_user::text) $$;
GRANT USAGE ON SCHEMA public TO mem_member;
GRANT SELECT ON meta, mem_grants TO mem_member;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO mem_member;
"""


def install(conn: psycopg.Connection[Any], tables: Sequence[str]) -> None:
    """The group role, grant table, policy functions and each table's policies."""
    conn.execute(_FUNCTIONS.encode())
    for table in tables:
        t = sql.Identifier(table)
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t))
        policies = {
            "read": "FOR SELECT USING (mem_reads(profile))",
            "add": "FOR INSERT WITH CHECK (mem_writes(profile))",
            "edit": "FOR UPDATE USING (mem_writes(profile)) WITH CHECK (mem_writes(profile))",
            "drop": "FOR DELETE USING (mem_writes(profile))",
        }
        for name, rule in policies.items():
            policy = sql.Identifier(f"{table}_{name}")
            conn.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(policy, t))
            conn.execute(sql.SQL("CREATE POLICY {} ON {} ").format(policy, t) + sql.SQL(rule))
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO mem_member").format(t))
    conn.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO mem_member")
