"""One PostgreSQL server for the test session, and a fresh database per use.

``MEM_TEST_POSTGRES_URL`` (a superuser's URL) names a server to use; without
it, pgserver starts PostgreSQL 16 with pgvector in a temporary folder, once
per process, stopped when the session ends (tests/conftest_postgres.py).
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
import uuid
import warnings
from typing import Any

import psycopg

from memory.storage.postgres import redact

_state: dict[str, Any] = {}
_made: list[str] = []


def server_url() -> str | None:
    """The superuser URL of the session's server; None if there is none."""
    if "url" not in _state:
        url = os.environ.get("MEM_TEST_POSTGRES_URL")
        if not url:
            with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR as root
                warnings.simplefilter("ignore")
                try:
                    import pgserver  # type: ignore[import-untyped]
                except ImportError:
                    _state["url"] = None
                    return None
                _state["server"] = pgserver.get_server(
                    tempfile.mkdtemp(prefix="mempg"), cleanup_mode="delete"
                )
            url = str(_state["server"].get_uri())
        _state["url"] = url
    return _state["url"]  # type: ignore[no-any-return]


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (libpq: a later dbname wins)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


def fresh_database() -> str:
    """A new, empty database on the session's server: its superuser URL."""
    url = server_url()
    assert url is not None
    name = f"memtest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    _made.append(name)
    return with_database(url, name)


def as_url(conninfo: str) -> str:
    """A libpq conninfo as the ``postgresql://`` URL mem's ``--db`` takes."""
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    user, name = info.get("user") or "postgres", info.get("dbname") or "postgres"
    if info.get("password"):
        user += ":" + urllib.parse.quote(str(info["password"]), safe="")
    host, port = str(info.get("host") or ""), info.get("port")
    if host.startswith("/"):
        query = f"?host={host}" + (f"&port={port}" if port else "")
        return f"postgresql://{user}@/{name}{query}"
    return f"postgresql://{user}@{host}{':' + str(port) if port else ''}/{name}"


def stop() -> None:
    """Drop what this session made (a server of its own is simply removed)."""
    url = _state.get("url")
    server = _state.pop("server", None)
    if server is not None:
        server.cleanup()
    elif url:
        with psycopg.connect(url, autocommit=True) as conn:
            for name in _made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
    _made.clear()
    _state.clear()


def describe() -> str:
    url = _state.get("url")
    return redact(url) if url else "no server"


def probe(url: str) -> bytes:
    """Every byte the database holds where forgotten text could stay: each
    relation's files as the server wrote them (heap, TOAST, indexes, after a
    CHECKPOINT flushed the buffers: dead tuples and free space included),
    read with ``pg_read_binary_file`` (superuser), plus every row of every
    table as text (a TOASTed value is compressed on disk)."""
    out: list[bytes] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        rels = conn.execute(
            "SELECT c.oid::regclass::text, pg_relation_filepath(c.oid), c.relkind "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't', 'i', 'm') "
            "AND c.relpersistence = 'p' AND pg_relation_filepath(c.oid) IS NOT NULL "
            "AND (n.nspname = 'public' OR c.oid >= 16384)"
        ).fetchall()
        for name, path, kind in rels:
            size = conn.execute("SELECT pg_relation_size(%s::regclass)", [name]).fetchone()
            segments = max(1, -(-int(size[0] if size else 0) // 2**30))
            for n in range(segments):
                part = path if n == 0 else f"{path}.{n}"
                data = conn.execute("SELECT pg_read_binary_file(%s, true)", [part]).fetchone()
                out.append(bytes(data[0]) if data and data[0] else b"")
            if kind == "r" and not name.startswith("pg_toast"):
                for (text,) in conn.execute(f"SELECT t::text FROM {name} t".encode()):
                    out.append(str(text).encode())
    return b"".join(out)
